"""Helpers for tests that run the real DVC pipeline in a temporary git repo holding this repo's files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ruamel.yaml import YAML

from tests.conftest import REPO, STAGES  # noqa: F401  (STAGES: for the tests that import it from here)


def env(**extra: str) -> dict[str, str]:
    # The stages run `python`: it must be this interpreter, with its packages.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    # botocore must never reach for cloud instance metadata (S3 remotes).
    return {**os.environ, "PATH": path, "AWS_EC2_METADATA_DISABLED": "true", **extra}


def sh(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # The project's own package, not the editable install of the repo this copy came from.
    result = subprocess.run(args, cwd=cwd, env=env(PYTHONPATH=str(cwd)), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "dvc", *args, check=check)


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return sh(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@t", *args)


def ran_stages(output: str) -> list[str]:
    """The stages that really ran (not skipped, not restored) according to DVC's output."""
    return re.findall(r"Running stage '(\w+)'", output)


def repro(cwd: Path, *args: str) -> list[str]:
    """Run `dvc repro` and return the stages that really ran."""
    return ran_stages(dvc(cwd, "repro", *args).stdout)


def edit_params(cwd: Path, change: Callable) -> None:
    yaml = YAML()  # round-trip: keeps comments and order
    path = cwd / "params.yaml"
    params = yaml.load(path)
    change(params)
    with open(path, "w") as handle:
        yaml.dump(params, handle)


def set_param(params, dotted: str, value) -> None:
    """Set ``dotted`` (e.g. "train.hist_gradient_boosting.max_iter") in a loaded params.yaml, adding
    the key and its sections when the file does not show them (a hidden knob keeps its default there)."""
    *sections, last = dotted.split(".")
    for name in sections:
        params = params.setdefault(name, {})
    params[last] = value


def param(params, dotted: str):
    """The value of ``dotted`` that the stages see: params.yaml's, or the schema's default."""
    from onnxship.core.params import parse_params

    value = parse_params(json.loads(json.dumps(params)))
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def fast(params) -> None:
    set_param(params, "train.candidates", ["logistic_regression", "hist_gradient_boosting"])
    set_param(params, "train.cv_folds", 3)
    set_param(params, "train.hist_gradient_boosting.max_iter", 50)
    set_param(params, "benchmark.min_repetitions", 5)
    set_param(params, "benchmark.time_budget_s", 0.0)
    set_param(params, "benchmark.warmup", 2)


def tiny(params) -> None:
    """Smaller still, for tests about sharing and comparing results rather than about the model."""
    fast(params)
    set_param(params, "train.candidates", ["logistic_regression"])
    set_param(params, "train.cv_folds", 2)
    set_param(params, "benchmark.batch_sizes", [1, 64])
    set_param(params, "benchmark.min_repetitions", 3)


def git_project(
    root: Path, change: Callable = fast, branch: str = "main", extra_files: dict[str, str] | None = None
) -> Path:
    """A git repo at ``root`` holding the working tree's files, as a fresh clone would, with params
    changed by ``change`` and ``extra_files`` ({path: text}) added, committed on ``branch``."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    for name, text in (extra_files or {}).items():
        (root / name).write_text(text)
    edit_params(root, change)
    git(root, "init", "-q", "-b", branch)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root
