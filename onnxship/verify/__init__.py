"""Verification: the parity gate, the benchmark, the recommendation, plot data."""
