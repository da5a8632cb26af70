"""Arms: the training mechanisms an audit compares (registry of arm kinds).

Public names are re-exported from :mod:`audit`."""
