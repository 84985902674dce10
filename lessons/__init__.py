"""Helpers of the tutorial notebooks that are not the lesson itself: the figures, so that each cell shows its idea."""
