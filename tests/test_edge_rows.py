"""Edge rows (onnxship.convert.edge_rows): generated rows that the INT8 search and the parity gate score."""

import pandas as pd

from onnxship.convert import edge_rows
from onnxship.verify import parity


def test_edge_rows_cover_every_column_and_case():
    base = pd.Series({"n": "3.5", "c": "a", "y": "p"})
    features = {"inputs": [{"name": "n", "role": "numeric"}, {"name": "c", "role": "categorical"}]}
    reference = pd.DataFrame({"n": ["1", "-20", ""], "c": ["a", "b", "a"]})
    rows, cases = edge_rows.edge_rows(base, features, reference)
    assert cases == [
        "missing value: n",
        "far above range: n",
        "far below range: n",
        "unseen category: c",
        "missing value: c",
    ]
    assert (
        rows.loc[0, "n"] == "" and float(rows.loc[1, "n"]) == 21000.0 and float(rows.loc[2, "n"]) == -21000.0
    )
    assert rows.loc[3, "c"] == edge_rows.UNSEEN_CATEGORY and rows.loc[4, "c"] == ""
    assert (rows["y"] == "p").all()


def test_the_gate_scores_the_same_edge_rows_as_the_int8_search():
    # One function builds them for both stages: the search's target then means what the gate checks.
    assert parity.edge_rows is edge_rows.edge_rows
