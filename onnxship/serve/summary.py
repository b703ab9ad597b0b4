"""What a scoring run tells its user, the same from every client (``python -m onnxship.serve`` and
``python -m onnxship.serve.spark``): the summary with its counts, first invalid rows, stderr lines
and JSON, and the message for an input that lacks a column the model reads.

Standard library only, like the rest of ``serve/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from onnxship.core.errors import UserError
from onnxship.core.files import atomic_write_text

MAX_LISTED = 20  # invalid rows listed in the summary (every one is counted)
SHOWN = 3  # invalid rows named on stderr


@dataclass
class ScoreSummary:
    """One scoring run: rows read, scored and skipped, how many were positive, and the first
    MAX_LISTED invalid rows (each ``{"row", "column", "reason"}``; the standalone scorer adds
    ``"line"``). Its fields, in this order, are the keys of the ``--summary`` JSON."""

    input: str
    output: str
    rows_read: int = 0
    rows_scored: int = 0
    rows_skipped: int = 0
    positives: int = 0
    invalid: list[dict] = field(default_factory=list)

    def add_scored(self, rows: int, positives: int) -> None:
        self.rows_scored += rows
        self.positives += positives

    def add_skipped(self, problem: dict) -> None:
        """Count an invalid row that was left out; list it if fewer than MAX_LISTED are listed."""
        self.rows_skipped += 1
        if len(self.invalid) < MAX_LISTED:
            self.invalid.append(problem)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def write(self, path: str | Path) -> None:
        """The JSON, written atomically (it appears whole or not at all)."""
        atomic_write_text(path, self.to_json())

    def lines(self) -> list[str]:
        """What the command line prints on stderr when the run succeeded."""
        lines = [f"scored {self.rows_scored:,} rows ({self.positives:,} positive) -> {self.output}"]
        if self.rows_skipped:
            first = "; ".join(
                f"row {i['row']}" + (f" column '{i['column']}'" if i["column"] else "") + f": {i['reason']}"
                for i in self.invalid[:SHOWN]
            )
            lines.append(f"skipped {self.rows_skipped:,} invalid rows (first: {first})")
        return lines


def require_columns(source: str | Path, present: Collection[str], required: Iterable[str]) -> None:
    """Refuse an input without every column the model reads, naming all the absent ones."""
    present = set(present)  # a wide header: one lookup per name, not a scan
    absent = [name for name in required if name not in present]
    if absent:
        raise UserError(
            f"{source} has no column {', '.join(repr(n) for n in absent)}: the model needs every input "
            "column (an empty cell means a missing value)"
        )


def require_folder(path: str | Path) -> None:
    """Refuse an output whose folder does not exist: a typo should not create a new folder tree."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"the folder of {path} does not exist: create {path.parent} first")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same inode if both exist, else the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()
