"""The music-recommendation worked example: synthetic data, flows and a playlist."""
