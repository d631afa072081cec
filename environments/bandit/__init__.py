"""A multi-armed Gaussian bandit with text feedback: EAST's validation task."""
