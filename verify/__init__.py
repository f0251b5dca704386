"""robustprop: verify."""
