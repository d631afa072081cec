"""Common-pool resource (fishery-style commons), after GovSim and Gupta et al. 2025."""
