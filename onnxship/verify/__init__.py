"""Verification: the parity gate (and its diagnosis), the benchmark, the recommendation, plot data."""
