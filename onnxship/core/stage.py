"""What every stage script shares: logging to stderr and one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import onnxship
from onnxship.core.errors import UserError


def check_package_source(project: Path) -> None:
    """Refuse to run a stage of ``project`` with the onnxship package of another checkout.

    DVC tracks ``project``'s own onnxship/ files as the stage's code; an environment whose editable
    install points at another checkout would run other code under this project's lock.
    """
    local = project / "onnxship"
    imported = Path(onnxship.__file__).resolve().parent
    if local.is_dir() and imported != local.resolve():
        raise UserError(
            f"this project's stages must run its own onnxship package ({local}), but Python imports "
            f"{imported}: run `pip install -e .` here, in this checkout's environment"
        )


def project_on_path(project: Path) -> None:
    """Put the project root (the folder of params.yaml and dvc.yaml) first on sys.path, so that a
    module named in params (``plugins.my_models:build``, ``plugins.clip``) imports, and a model
    that pickled one of its classes unpickles, with no PYTHONPATH edits. Python puts the script's
    folder (``scripts/``) there, not the folder the stage runs in."""
    root = str(project.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)


def run(main: Callable[[], int | None]) -> None:
    """Run a stage's ``main``; a UserError becomes ``error: <message>`` and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        check_package_source(Path.cwd())
        project_on_path(Path.cwd())
        code = main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)
