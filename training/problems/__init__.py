"""Stage 1: questions and their tests (loaders; AceCoder test synthesis)."""
