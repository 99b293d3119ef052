"""Black-box load tests and benchmarks (HTTP only)."""
