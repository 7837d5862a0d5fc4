"""Dataset readers and preprocessing shared by real and synthetic data."""
