"""A table with COMPAS's schema and race counts (ProPublica's two-year file, 7,214 rows).

COMPAS itself cannot be downloaded in tests, so this stand-in keeps what the app's
tests need from it: the columns a user would see and groups as small as COMPAS's
(18 'Native American' and 32 'Asian' people), which are too small to audit alone.
The values are random; the label depends on priors and age so that a model learns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Rows per race in ProPublica's compas-scores-two-years.csv.
RACE_COUNTS = {"African-American": 3696, "Caucasian": 2454, "Hispanic": 637, "Other": 377,
               "Asian": 32, "Native American": 18}


def compas_like(seed: int = 0, scale: float = 1.0) -> pd.DataFrame:
    """The stand-in table; ``scale`` < 1 shrinks the large groups only (never the small ones)."""
    rng = np.random.default_rng(seed)
    counts = {race: n if n < 100 else max(100, int(n * scale)) for race, n in RACE_COUNTS.items()}
    race = rng.permutation(np.concatenate([[r] * n for r, n in counts.items()]))
    n = race.size
    age = rng.integers(18, 70, n)
    priors = rng.poisson(3.2, n)
    logit = -0.6 + 0.25 * priors - 0.04 * (age - 35) + rng.normal(0, 0.8, n)
    return pd.DataFrame({
        "sex": rng.choice(["Male", "Female"], n, p=[0.81, 0.19]),
        "age": age,
        "age_cat": np.where(age < 25, "Less than 25", np.where(age > 45, "Greater than 45", "25 - 45")),
        "race": race,
        "juv_fel_count": rng.poisson(0.07, n),
        "juv_misd_count": rng.poisson(0.09, n),
        "priors_count": priors,
        "c_charge_degree": rng.choice(["F", "M"], n, p=[0.65, 0.35]),
        "two_year_recid": (logit > 0).astype(int),
    })
