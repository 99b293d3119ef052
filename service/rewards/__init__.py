"""RL rewards (/get_reward): score, pass-rate and hybrid modes, turn recovery, verdict cache."""
