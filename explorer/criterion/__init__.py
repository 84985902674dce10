"""Panel 2, the learngene criterion: the heatmap, its tau control and the layer selection."""
