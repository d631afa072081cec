"""Activation steering (filled in by the steering work)."""
