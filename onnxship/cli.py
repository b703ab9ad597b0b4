"""What every stage script shares: logging to stderr and one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from onnxship.errors import UserError


def run(main: Callable[[], int | None]) -> None:
    """Run a stage's ``main``; a UserError becomes ``error: <message>`` and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        code = main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)
