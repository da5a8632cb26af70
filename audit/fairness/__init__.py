"""Measure, fairness: per-group metrics, gaps and their intervals.

Public names are re-exported from :mod:`audit`."""
