"""Data: the dataset registry and loaders, image decoding, class divisions, task streams and contact sheets."""
