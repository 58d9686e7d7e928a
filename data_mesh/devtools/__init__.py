"""Sample and synthetic data for local runs, demos and scale tests."""
