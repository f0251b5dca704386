"""robustprop: export."""
