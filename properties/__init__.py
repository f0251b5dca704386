"""Robustness properties (SR, LR, CR, SCR) defined once, read four ways."""
