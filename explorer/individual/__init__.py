"""Panel 3, individual models: the few-shot plan, its results table and the accuracy-against-size chart."""
