"""Scoring from the JSON contract alone: what a C++, C#, Java or Node client does.

Only numpy and onnxruntime here (no scikit-learn, no pandas), so this is the reference a port
follows: build one [n, 1] tensor per input from onnx_features.json, run the session, take the
positive-class column named by onnx_metadata.json, and apply ``p >= threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import onnxruntime as ort


def session(model: str | bytes, threads: int = 1) -> ort.InferenceSession:
    """A CPU session for a model file path (or the serialized model itself)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def feeds(columns: Mapping[str, Sequence], features: dict) -> dict[str, np.ndarray]:
    """ONNX inputs for a batch given as ``{column name: values}``.

    Numeric values become float32 (None -> NaN); strings stay strings (None -> "", the missing
    value the contract names).
    """
    out = {}
    for spec in features["inputs"]:
        values = columns[spec["name"]]
        if spec["dtype"] == "float32":
            array = np.asarray(values, dtype=np.float32)  # None and NaN both become NaN
        else:
            array = np.array(
                [spec["missing_value"] if _is_missing(v) else str(v) for v in values], dtype=object
            )
        out[spec["onnx_name"]] = array.reshape(-1, 1)
    return out


def positive_probability(
    sess: ort.InferenceSession, inputs: dict[str, np.ndarray], metadata: dict
) -> np.ndarray:
    output = sess.run([metadata["probability_output"]], inputs)[0]
    return np.asarray(output[:, metadata["positive_class_index"]], dtype=np.float64)


def decide(probability: np.ndarray, metadata: dict) -> np.ndarray:
    """The decision rule of the contract: positive if p >= threshold."""
    return probability >= metadata["threshold"]
