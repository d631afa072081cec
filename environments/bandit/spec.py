"""The bandit's spec: everything the rest of normsim needs to know about it."""

from __future__ import annotations

from pydantic import Field

from environments.bandit import metrics
from environments.bandit.config import BanditConfig
from environments.bandit.model import BanditModel
from environments.bandit.rules import RULES
from environments.mechanics import SocialLearningConfig
from environments.spec import EnvironmentSpec, MechanicsBlock


class BanditMechanics(MechanicsBlock):
    social_learning: SocialLearningConfig = Field(default_factory=SocialLearningConfig)


SPEC = EnvironmentSpec(
    name="bandit",
    summary="every agent plays its own multi-armed bandit (EAST's exploration task); no norms, no sanctions",
    config=BanditConfig,
    mechanics=BanditMechanics,
    model=BanditModel,
    rules=RULES,
    metrics=metrics.compute,
    headline=("mean_reward", "regret", "best_arm_rate", "switch_rate", "final_entropy", "mean_action_entropy"),
    example="bandit_scripted.yaml",
    metric_ranges={"best_arm_rate": (0.0, 1.0), "explored_all": (0.0, 1.0)},
    progress=("mean_reward", "mean_entropy", "best_arm_share"),
    mechanic_notes={"social_learning": "copy a better-rewarded player's rule (Fermi rule)"},
)
