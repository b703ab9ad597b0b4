import numpy as np
import pytest

from onnxship.verify import parity


def test_compare_reports_flips_closest_to_the_threshold_first():
    reference = np.array([0.10, 0.49, 0.51, 0.90, 0.50])
    backend = np.array([0.10, 0.52, 0.48, 0.90, 0.50])
    cases = [f"row {i}" for i in range(5)]
    result = parity.compare(
        reference, backend, parity.Thresholds(0.5, 0.5, margin=0.02), cases, max_listed=10
    )
    assert result["flipped"] == 2 and result["agreement"] == 0.6
    assert result["flipped_within_margin"] == 2
    assert [r["row"] for r in result["flipped_rows"]] == [1, 2]  # equal distance: stable order
    assert result["max_abs_diff"] == pytest.approx(0.03)


def test_a_different_backend_threshold_flips_decisions():
    reference = np.array([0.30, 0.45, 0.60])
    result = parity.compare(
        reference, reference.copy(), parity.Thresholds(0.40, 0.50, 0.01), ["a", "b", "c"], 5
    )
    assert result["max_abs_diff"] == 0.0 and result["flipped"] == 1


def test_verdict_names_each_broken_tolerance():
    result = {"max_abs_diff": 0.2, "agreement": 0.9, "flipped": 3, "flipped_within_margin": 1}
    reasons = parity.verdict(result, max_abs_diff=0.05, min_agreement=0.99)
    assert len(reasons) == 2
    assert "0.2 > tolerance 0.05" in reasons[0]
    assert "3 flipped, 1 within the margin" in reasons[1]
    assert parity.verdict(result, max_abs_diff=0.5, min_agreement=0.5) == []


def test_fragility_counts_ties_and_near_misses():
    reference = np.array([0.5, 0.505, 0.6, 0.495])
    assert parity.fragility(reference, 0.5, 0.01) == {"within_margin": 3, "ties": 1}


def test_diff_histogram_counts_every_row_once():
    diff = np.array([0.0, 5e-8, 2e-6, 0.5, 1.0, 0.03])
    hist = parity.diff_histogram(diff)
    assert sum(b["rows"] for b in hist) == len(diff)
    assert hist[0] == {"from": 0.0, "to": 1e-7, "rows": 2}
    assert hist[-1] == {"from": 0.1, "to": 1.0, "rows": 2}
