"""Scoring: reward-model registry, cross-request batcher, engines, chat rendering, ranking."""
