"""Conformance checks every registered environment must pass (filled in below)."""
