"""Stage 4: reward models: Bradley-Terry training, likelihood rewards, export, conversion."""
