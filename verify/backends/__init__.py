"""robustprop: verify.backends."""
