"""Sweeps: the same audit over epsilons and dropout budgets, on one machine or a Ray cluster.

Public names are re-exported from :mod:`audit`."""
