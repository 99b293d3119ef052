"""Run untrusted Python programs against assert tests, with real isolation."""
