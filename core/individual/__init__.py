"""Individual models (spec sections 5-7): built around a learngene, trained on few-shot target tasks, compared."""
