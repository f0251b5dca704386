"""robustprop: robustprop.verify.engine.backends."""
