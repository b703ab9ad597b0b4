"""Write docs/errors.md, the error catalogue, from the bad-input corpus (tests/corpus/*.yaml).

    python -m tools.errors_catalogue

tests/test_corpus.py checks that the file is up to date, so every corpus case is listed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.corpus_cases import load_cases

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
WHO = {
    "scorers": "Python scorer and Node client",
    "python": "Python scorer",
    "node": "Node client",
}

HEADER = """# Error catalogue: bad input and what onnxship does with it

Generated from the bad-input corpus (`tests/corpus/*.yaml`, one case per file) by
`python -m tools.errors_catalogue`; `tests/test_corpus.py` runs every case against the stage scripts,
the Python scorer (`python -m onnxship.serve`) and the Node client (`clients/node/score.mjs`) and
checks this file is up to date.

Every bad input ends in one of two ways:
- **exit 2**: one line `error: <what is wrong and how to fix it>` on stderr (it holds the key words
  listed here), and nothing written: no artifact, no output file, no temp file.
- **accepted**: the documented result below (exit 0; for the parity gate, exit 1 is its verdict).

The Python scorer and the Node client give the same verdict on every case they share (and the same
scores when they accept it). The web page (`clients/web`) gets that verdict too on every shared case
about the artifacts or a CSV's content (`tests/test_web.py`, in Chromium): refused with the same one
line, or, for a row that breaks the contract, that row listed and the others scored, as the Python
scorer's `--skip-invalid` does.

Rules behind several cases:
- A column not listed under `data.numeric`/`data.categorical` is *numeric-looking* when at least 95 %
  of its present cells are numbers under the contract's number rule (`onnxship.contract.encode`): if
  some cells are not, training stops naming the column, the first bad row and value; clean them, or
  list the column under `data.categorical`. Below 95 % the column is categorical.
- Bounds (params.yaml): `data.max_columns` (10,000), `data.max_category_chars` (1,000 characters per
  categorical value), `benchmark.time_budget_s` (at most 60 s per cell), `train.seed` (0 to 2**32 - 1).
- Files are written atomically with the mode `open` gives (0666 minus the umask: 0644 under umask 022).
- params.yaml is read as YAML 1.2 (as DVC reads it): an unquoted `yes` is the text "yes", but
  `true`/`false` are booleans and refused as a label, with a hint to quote them.

| case | where | bad input | verdict |
|---|---|---|---|
"""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(cases: list[dict]) -> str:
    lines = [HEADER.rstrip("\n")]
    for case in cases:
        expect = case["expect"]
        where = WHO.get(case["target"], f"stage `{case['target']}`")
        if expect["exit"] == 2:
            verdict = "exit 2: " + ", ".join(f"`{w}`" for w in expect["error"])
        else:
            verdict = f"accepted (exit {expect['exit']}): {expect['accepted']}"
        lines.append(f"| `{case['id']}` | {where} | {_cell(case['about'])} | {_cell(verdict)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # No options: any argument (--help too) gets the docstring instead of a rewritten file.
    if sys.argv[1:]:
        raise SystemExit(__doc__)
    DOC.write_text(render(load_cases()))
    print(f"wrote {DOC}")
