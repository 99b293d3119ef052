"""Stage 3: pass rates from the sandbox, AceCoder preference pairs, their token ids."""
