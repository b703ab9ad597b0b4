"""The contract as constants: how a raw record becomes model inputs, and an output a decision.

The export stage writes these into onnx_features.json and onnx_metadata.json; the encoder, the
scorer, training's data reading and the tests read them from here, and the Node client from the
JSON files. ``docs/contract.md`` documents every field; ``schemas/*.v<N>.json`` are their JSON Schemas.
"""

from __future__ import annotations

# onnx_features.json's schema_version that export writes by default: 2, the packed layout (one
# float32 [n, K] "numeric" and one string [n, M] "categorical" graph input). Version 1 (one [n, 1]
# input per column) stays readable by every client and can still be exported (export.contract_version).
CONTRACT_VERSION = 2
FEATURES_VERSIONS = (1, 2)  # the onnx_features.json versions every client reads
METADATA_VERSION = 1  # onnx_metadata.json keeps its own version: v2 changed nothing in it
# Contract v2's graph inputs, by role (the `tensors` of onnx_features.json).
PACKED_TENSORS = {"numeric": "numeric", "categorical": "categorical"}

# Cells that mean "missing" in a numeric column (pandas' common spellings). In a categorical column
# only the empty cell is missing: "NA" may well be a real category (Namibia, "not applicable").
NUMERIC_MISSING = frozenset({"", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "-"})
CATEGORICAL_MISSING = ""

# Text accepted as a number in a numeric column: plain decimal or scientific notation, optional
# spaces or tabs around it. ASCII digits only, and written so that Python's re and ECMAScript's
# RegExp read it the same way.
NUMBER_PATTERN = r"^[ \t]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*$"
# float64 values of this magnitude or more round to infinity in float32 (float32 max + half an ulp).
FLOAT32_LIMIT = 3.4028235677973366e38

ENCODING = {
    "numeric": {
        "dtype": "float32",
        "json_types": ["number", "string", "null"],
        "number_pattern": NUMBER_PATTERN,
        "parse": "float64_then_float32",
        "missing_tokens": sorted(NUMERIC_MISSING),
        "missing_value": "NaN",
        "non_finite": "error",
    },
    "categorical": {
        "dtype": "string",
        "json_types": ["string", "null"],
        "missing_tokens": [CATEGORICAL_MISSING],
        "missing_value": CATEGORICAL_MISSING,
        "normalization": "none",
        "unknown_category": "pass_through",
    },
}

# onnx_features.json: what a record may omit or add.
MISSING_FIELD = "error"
EXTRA_FIELDS = "ignore"

# onnx_metadata.json: the output to read and the decision rule.
PROBABILITY_OUTPUT = "probabilities"
DECISION_RULE = "positive if p >= threshold"
DECISION_OPERATOR = ">="
DECISION_PRECISION = "float64"
