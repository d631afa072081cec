"""The bottom layer of normsim: what every other layer may import and nothing below it.

* :mod:`sim.core.schema`: the configuration base (``StrictModel``) and ``ConfigError``;
* :mod:`sim.core.events`: the one schema of an event row;
* :mod:`sim.core.metrics`: metric helpers every environment builds on;
* :mod:`sim.core.stats`: shared statistics (Gini, intervals that respect a metric's range).

It imports nothing from the rest of normsim (an import-linter contract holds it).
"""
