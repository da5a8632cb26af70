"""The audit pipeline: prepare -> plan -> train -> measure -> assemble.

Public names are re-exported from :mod:`audit`."""
