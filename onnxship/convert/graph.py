"""Edits to ONNX graphs that every stage writing an ONNX file needs."""

from __future__ import annotations

import onnx


def normalize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make the serialized model byte-identical across runs.

    skl2onnx writes opset_import in an order that depends on Python's hash seed.
    """
    ordered = sorted(model.opset_import, key=lambda o: (o.domain, o.version))
    del model.opset_import[:]
    model.opset_import.extend(ordered)
    return model
