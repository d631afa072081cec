"""normsim: simulate societies of LLM agents.

>>> import sim
>>> result = sim.run("scenarios/commons_scripted.yaml", seed=1, out="runs")
>>> result.metrics["survival_time"]
"""

from sim.config import Scenario, load_scenario
from sim.runner import RunResult, load_run, run
from sim.schema import ConfigError

__all__ = ["ConfigError", "RunResult", "Scenario", "load_run", "load_scenario", "run"]
