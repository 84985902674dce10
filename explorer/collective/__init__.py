"""Panel 1, the collective model: training from the page, its live progress, widths and health charts."""
