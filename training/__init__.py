"""robustprop: training."""
