"""Plan, group dropout: choosing one dropout rate per group under a budget.

Public names are re-exported from :mod:`audit`."""
