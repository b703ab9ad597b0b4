"""Your modules through real `dvc repro` with no PYTHONPATH pointing at the project: a candidate of
your own (plugins.my_models:build) and a model that pickles a plugin class (plugins.clip) are
imported and unpickled by every stage, and editing plugins/ makes DVC re-run train."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dvc_project import edit_params, env, git_project, ran_stages, set_param, tiny

pytestmark = pytest.mark.e2e


def run(root: Path, package: Path, *args: str) -> subprocess.CompletedProcess:
    """``args`` in ``root`` with PYTHONPATH holding only the clone's onnxship package (as an
    editable install of the clone would give), never the project root: plugins import only if the
    stages put the root on sys.path themselves."""
    result = subprocess.run(args, cwd=root, env=env(PYTHONPATH=str(package)), capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_plugins_import_unpickle_and_rerun_train_with_no_pythonpath(tmp_path):
    def mine(params) -> None:
        tiny(params)
        set_param(params, "train.candidates", ["plugins.my_models:build"])

    root = git_project(tmp_path / "project", mine)
    package = tmp_path / "package"
    package.mkdir()
    (package / "onnxship").symlink_to(root / "onnxship")
    # The environment alone does not give `plugins` (a script's sys.path starts at scripts/).
    no_plugins = subprocess.run(
        [sys.executable, "-c", "import plugins"],
        cwd=root / "scripts",
        env=env(PYTHONPATH=str(package)),
        capture_output=True,
    )
    assert no_plugins.returncode != 0

    dvc = [sys.executable, "-m", "dvc"]
    ran = ran_stages(run(root, package, *dvc, "repro").stdout)
    assert ran == ["train", "export", "quantize", "parity", "benchmark", "recommend"]
    artifacts = root / "artifacts"
    lineage = json.loads((artifacts / "lineage.json").read_text())
    assert lineage["chosen"]["family"] == "plugins.my_models:build"
    assert json.loads((artifacts / "parity_report.json").read_text())["passed"]
    assert json.loads((artifacts / "onnx_metadata.json").read_text())["family"] == "plugins.my_models:build"

    # Editing your module makes train (and the stages that run your modules) stale.
    assert "up to date" in run(root, package, *dvc, "status").stdout
    with open(root / "plugins" / "my_models.py", "a") as handle:
        handle.write("\n# an edit\n")
    status = run(root, package, *dvc, "status", "--json").stdout
    stale = json.loads(status)
    assert "train" in stale and any("plugins" in str(change) for change in stale["train"])

    # A built-in family with a plugin step (plugins.clip): export converts it, parity and the
    # benchmark unpickle a model that holds a plugins class, all with no PYTHONPATH.
    def clipped(params) -> None:
        set_param(params, "train.candidates", ["logistic_regression"])
        set_param(params, "train.numeric_transformer", "plugins.clip:QuantileClipper")
        set_param(params, "export.converter_modules", ["plugins.clip"])

    edit_params(root, clipped)
    ran = ran_stages(run(root, package, *dvc, "repro").stdout)
    assert {"train", "export", "parity", "benchmark"} <= set(ran)
    assert json.loads((artifacts / "parity_report.json").read_text())["passed"]
    assert "sklearn" in json.loads((artifacts / "benchmark.json").read_text())["backends"]
