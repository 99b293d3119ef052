"""Scoring engines: one small interface (base.Engine), torch and vLLM implementations."""
