"""Assemble: the audit result, its schema, JSON form and text views.

Public names are re-exported from :mod:`audit`."""
