"""Prepare, part 1: read, validate, split by group x label and encode tabular data.

Public names are re-exported from :mod:`audit`."""
