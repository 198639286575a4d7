"""itwin-runs: failure analytics for iTwin Export API runs."""
