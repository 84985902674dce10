"""Panel 4, settings and export: the view as JSON and as a link, and exported tables and figures."""
