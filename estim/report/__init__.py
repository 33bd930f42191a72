"""What a saved fit says: summaries, predictive checks, comparisons, figures."""
