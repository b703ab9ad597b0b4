"""Which numeric columns are row identifiers, not features: the leakage guard of role inference.

A row number or record ID carries the file's order, and files are often ordered by time or by
outcome: a model fitted on it scores well on a random split and learns nothing that holds for new
rows (a real run with an R ``rownames`` column gained 0.03 AP and 0.04 AUC by it). String IDs are
found in onnxship.train.data (a distinct text in nearly every row); this module finds integer ones.

The rule (``integer_id_reason``), on the column's present cells (missing ones left out), in file order:
1. At least MIN_ROWS (100) present cells, every one an integer (12 or 12.0, not 12.5). Fewer rows
   cannot tell an ID from a feature; a fraction means a measurement.
2. Then it is an ID if either
   a. it strictly increases or strictly decreases down the file (1, 2, 5, 9, ...): a row counter,
      an auto-increment key, an epoch timestamp; or
   b. it is distinct in at least DISTINCT_SHARE (99 %) of the cells AND its values span at most
      SPAN_FACTOR (2) times as many integers as there are cells (max - min + 1 <= 2 n): the
      numbers 1..n (or a gap-filled stretch of them) in any order, i.e. a shuffled row number.
A genuine integer feature fails 2a (it goes up and down) and 2b: its values repeat
("total_day_calls": 119 distinct in 5,000 rows), or they are spread wide. n integers drawn at
random from a range of R values collide in about n / 2R of the cells, so 99 % distinct needs R of
about 50 n, far above the 2 n that 2b allows: only a deliberate numbering is both. A float column
never matches (rule 1), nor one with ties in a sorted file (2a wants strict order, 2b distinct values).

List such a column under data.numeric to keep it as a feature on purpose.
"""

from __future__ import annotations

import numpy as np

MIN_ROWS = 100
DISTINCT_SHARE = 0.99
SPAN_FACTOR = 2.0
_EXACT = 2.0**53  # integers beyond this are not all representable in float64: never an ID here


def integer_id_reason(values: np.ndarray) -> str | None:
    """Why the column (float64, NaN for missing, in file order) is an integer row ID, or None."""
    present = values[~np.isnan(values)]
    n = len(present)
    if n < MIN_ROWS or not bool((np.abs(present) < _EXACT).all()):
        return None
    if not bool((present == np.round(present)).all()):
        return None
    steps = np.diff(present)
    if bool((steps > 0).all()) or bool((steps < 0).all()):
        way = "increase" if steps[0] > 0 else "decrease"
        return f"integers that strictly {way} down the file ({n:,} rows): a row number or key"
    distinct = len(np.unique(present))
    span = float(present.max() - present.min() + 1)
    if distinct >= DISTINCT_SHARE * n and span <= SPAN_FACTOR * n:
        return (
            f"integers distinct in {distinct:,} of {n:,} rows, spanning only {span:,.0f} values: "
            "a shuffled row number"
        )
    return None
