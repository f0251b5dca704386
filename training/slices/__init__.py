"""Small data slices shipped with the package (see ``make_slice.py``)."""
