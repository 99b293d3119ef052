"""Stage 5: pair accuracy and best-of-N, memorization controls, plots."""
