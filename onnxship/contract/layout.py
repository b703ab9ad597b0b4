"""Where each column goes in the graph's inputs: the one place that knows contract v1 from v2.

The encoder builds one array per column, in ``inputs`` order; ``Layout.pack`` turns those into the
feeds ``session.run`` takes:
- v1: one [n, 1] array per input, named by its ``onnx_name``;
- v2: per entry of ``tensors``, one [n, K] array (float32, or object for strings) whose column
  ``index`` holds the input that names that ``tensor``.
The values are the same either way (the same float32 rounding, the same strings): only their
arrangement differs. ``Layout`` also checks, when a contract loads, that v2's indices cover each
tensor's columns exactly once, a rule JSON Schema cannot express.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxship.core.errors import UserError

DTYPES = {"float32": np.float32, "string": object}
ORT_TYPES = {"float32": "tensor(float)", "string": "tensor(string)"}


@dataclass(frozen=True)
class Tensor:
    """One graph input: its name, element dtype (contract spelling) and column count."""

    name: str
    dtype: str
    width: int


class Layout:
    """The graph inputs of one onnx_features.json and each input's place in them (tensor, column)."""

    def __init__(self, features: Mapping[str, Any]) -> None:
        self.version = features.get("schema_version", 1)  # a bare dict of inputs (tests): v1
        inputs = list(features["inputs"])
        if self.version == 1:
            self.tensors = [Tensor(spec["onnx_name"], spec["dtype"], 1) for spec in inputs]
            self.places = [(spec["onnx_name"], 0) for spec in inputs]
        else:
            self.tensors = [Tensor(t["onnx_name"], t["dtype"], t["shape"][1]) for t in features["tensors"]]
            self.places = [(spec["tensor"], spec["index"]) for spec in inputs]
            _check_packed(inputs, self.tensors)
        self.names = [spec["name"] for spec in inputs]
        by_tensor: dict[str, list[int]] = {t.name: [] for t in self.tensors}
        for position, (tensor, _) in enumerate(self.places):
            by_tensor[tensor].append(position)
        # Per tensor, the positions (in ``inputs``) of its columns, in column order.
        self._order = {
            name: sorted(positions, key=lambda p: self.places[p][1]) for name, positions in by_tensor.items()
        }

    def input_types(self) -> dict[str, str]:
        """ONNX type of each graph input, as onnxruntime names it."""
        return {t.name: ORT_TYPES[t.dtype] for t in self.tensors}

    def pack(self, columns: Sequence[Any]) -> dict[str, np.ndarray]:
        """The feeds from one array (or list) of n converted values per input, in ``inputs`` order.

        Each value is cast to the tensor's dtype once (a float64 to the nearest float32), in v1 as in
        v2, so both layouts hold the same bits.
        """
        rows = len(columns[0]) if len(columns) else 0
        return {
            t.name: _block([columns[p] for p in self._order[t.name]], t.dtype, rows) for t in self.tensors
        }

    def order(self, dtype: str) -> list[int]:
        """The positions (in ``inputs``) of the inputs that ``dtype`` tensors hold, tensor by tensor,
        each in column order: the column order of a block ``from_blocks`` takes."""
        return [p for t in self.tensors if t.dtype == dtype for p in self._order[t.name]]

    def from_blocks(self, blocks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feeds from one [n, w] block per dtype, its columns in ``order(dtype)``: a v2 tensor is
        its block itself (no copy), v1's [n, 1] inputs are copies of the block's columns."""
        feeds, at = {}, dict.fromkeys(blocks, 0)
        for t in self.tensors:
            block, start = blocks[t.dtype], at[t.dtype]
            part = block[:, start : start + t.width]
            feeds[t.name] = part if t.width == block.shape[1] else np.ascontiguousarray(part)
            at[t.dtype] += t.width
        return feeds

    def empty(self, rows: int = 1) -> dict[str, np.ndarray]:
        """Feeds of ``rows`` rows to fill in place (``views``)."""
        return {t.name: np.empty((rows, t.width), dtype=DTYPES[t.dtype]) for t in self.tensors}

    def views(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Per input, in ``inputs`` order, its [n, 1] column of ``feeds`` (a view: writes land in them)."""
        return [feeds[tensor][:, index : index + 1] for tensor, index in self.places]

    def column(self, feeds: Mapping[str, np.ndarray], name: str) -> np.ndarray:
        """The [n, 1] values of input ``name`` in ``feeds``."""
        tensor, index = self.places[self.names.index(name)]
        return feeds[tensor][:, index : index + 1]

    def crossed(self, feeds: Mapping[str, np.ndarray], a: str, b: str) -> dict[str, np.ndarray]:
        """A copy of ``feeds`` with the values of inputs ``a`` and ``b`` exchanged (same dtype)."""
        crossed = {name: array.copy() for name, array in feeds.items()}
        first, second = self.column(feeds, a).copy(), self.column(feeds, b).copy()
        self.column(crossed, a)[:] = second
        self.column(crossed, b)[:] = first
        return crossed


def _block(columns: list, dtype: str, rows: int) -> np.ndarray:
    """One [rows, len(columns)] C-ordered array of ``dtype`` holding ``columns`` side by side.

    A few rows: one conversion of the whole list, transposed. More: each column written into its
    place, which costs a strided copy per column instead of a second pass over every cell (at 2,000
    columns x 1,024 rows about 4x faster than converting and transposing).
    """
    if rows <= 16:
        block = np.array(columns, dtype=DTYPES[dtype]).reshape(len(columns), rows)
        return np.ascontiguousarray(block.T)
    out = np.empty((rows, len(columns)), dtype=DTYPES[dtype])
    for j, column in enumerate(columns):
        out[:, j] = column
    return out


def _check_packed(inputs: list[dict], tensors: list[Tensor]) -> None:
    """Contract v2's rules beyond its JSON Schema: every input names a listed tensor of its own dtype,
    and each tensor's indices are 0..K-1, each exactly once."""
    by_name = {t.name: t for t in tensors}
    if len(by_name) != len(tensors):
        raise UserError("onnx_features.json lists a tensor twice in 'tensors': re-run the export stage")
    seen: dict[str, set[int]] = {t.name: set() for t in tensors}
    for spec in inputs:
        tensor = by_name.get(spec["tensor"])
        if tensor is None or tensor.dtype != spec["dtype"]:
            raise UserError(
                f"onnx_features.json: input '{spec['name']}' names tensor {spec['tensor']!r}, which "
                f"'tensors' does not list with dtype {spec['dtype']}: re-run the export stage"
            )
        index = spec["index"]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < tensor.width:
            raise UserError(
                f"onnx_features.json: input '{spec['name']}' has index {index!r} outside tensor "
                f"'{tensor.name}' of {tensor.width} columns: re-run the export stage"
            )
        if index in seen[tensor.name]:
            raise UserError(
                f"onnx_features.json: two inputs share index {index} of tensor '{tensor.name}': "
                "re-run the export stage"
            )
        seen[tensor.name].add(index)
    for tensor in tensors:
        if len(seen[tensor.name]) != tensor.width:
            raise UserError(
                f"onnx_features.json: tensor '{tensor.name}' has {tensor.width} columns but "
                f"{len(seen[tensor.name])} inputs: re-run the export stage"
            )
