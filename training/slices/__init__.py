"""Small data slices shipped with the package (see ``make_slice.py``)."""

__all__: list[str] = []
