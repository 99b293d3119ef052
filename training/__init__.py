"""Offline AceCoder pipeline: problems → candidates → pass rates → pairs → BT reward model."""
