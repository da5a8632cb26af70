"""Measure, privacy: membership inference, the canary audit and the mechanism curve.

Public names are re-exported from :mod:`audit`."""
