"""DP accounting: noise calibration, epsilon from an accountant, the privacy ledger of a run.

Below training (trainers calibrate noise with it) and privacy measurement alike.
Public names are re-exported from :mod:`audit`."""
