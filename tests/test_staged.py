"""The fast tier's artifacts are the pipeline's: the stage scripts run in-process (``staged``) serve
byte for byte what `dvc repro` in a clone (``built``) serves from the same params, so the scorer,
contract and client tests on ``served`` test what DVC ships.

The two builds are also the pipeline's determinism check: two runs from scratch of the same code,
params and data, one stage per process under DVC and all stages in this process, must write the
same bytes in every output but the benchmark's timings (and the recommendation and headline that
quote them). A forced `dvc repro` re-runs exactly those stage scripts.
"""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO, SERVED

# Outputs that hold measured timings: the only ones allowed to differ between two runs.
TIMINGS = {"benchmark.json", "plots/latency.csv", "recommendation.json", "metrics.json"}


def pipeline_outputs() -> list[str]:
    """Every outs/metrics/plots path of dvc.yaml, relative to artifacts/."""
    stages = YAML(typ="safe").load((REPO / "dvc.yaml").read_text())["stages"].values()
    paths = []
    for stage in stages:
        for entry in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            paths.append(entry if isinstance(entry, str) else next(iter(entry)))
    assert all(path.startswith("artifacts/") for path in paths), paths
    return sorted(path.removeprefix("artifacts/") for path in paths)


OUTPUTS = pipeline_outputs()


def test_the_timings_are_outputs_and_the_rest_is_compared():
    assert set(OUTPUTS) > TIMINGS and set(SERVED) < set(OUTPUTS)
    assert len(set(OUTPUTS) - TIMINGS) == 14  # model, contract, reports, plots: what must not move


@pytest.mark.parametrize("name", SERVED)
def test_in_process_stages_serve_what_dvc_repro_serves(staged, built, name):
    assert (staged.served / name).read_bytes() == (built.served / name).read_bytes(), name


@pytest.mark.parametrize("name", sorted(set(OUTPUTS) - TIMINGS - set(SERVED)))
def test_two_builds_from_scratch_write_the_same_bytes(staged, built, name):
    assert (staged.outputs / name).read_bytes() == (built.outputs / name).read_bytes(), name
