"""A synthetic multi-camera world with exact ground truth: people, cameras, and data set layouts."""
