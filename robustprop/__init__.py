"""robustprop: neural-network robustness as a mathematical property.

The installed namespace. Its subpackages are the repository's top-level folders:
:mod:`robustprop.properties`, :mod:`robustprop.training`, :mod:`robustprop.export` and
:mod:`robustprop.verify`.
"""
