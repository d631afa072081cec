"""Agents and the policies that decide for them."""

from agents.agent import SocietyAgent, Strategy
from agents.interfaces import Decision, DecisionRequest, Policy, Prompt

__all__ = ["Decision", "DecisionRequest", "Policy", "Prompt", "SocietyAgent", "Strategy"]
