"""Train: trainers (batched, reference), the stacked-MLP maths and the executor that runs an audit's jobs.

Public names are re-exported from :mod:`audit`."""
