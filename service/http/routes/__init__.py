"""HTTP routes: thin adapters from schemas to the core."""
