"""Which MatMul/Gemm nodes may be INT8: a greedy, measured search.

Every candidate node is quantized, then the INT8 model is scored on calibration rows (training
rows, never test rows) plus edge rows built from them, row by row AND as one batch, against the
FP32 model. While that breaks the INT8 tolerances, the node whose exclusion helps most is kept in
FP32 (ORT ``nodes_to_exclude``). The report says, per node, whether it is quantized, why, what it
saves in bytes and how far the probabilities move when only that node is quantized.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx
import pandas as pd

from onnxship.contract import runtime
from onnxship.contract.encode import Encoder
from onnxship.convert.block_split import BlockSplit, fold_fp32_block_sums, split_block_matmuls
from onnxship.convert.kernel_families import family_models
from onnxship.convert.quantize import Quantization, quantizable_nodes, quantize, quantized_node_names

log = logging.getLogger("quantize")


@dataclass(frozen=True)
class Target:
    """What the search must reach against FP32 (the gate's INT8 tolerances times a headroom)."""

    max_abs_diff: float
    min_agreement: float


@dataclass(frozen=True)
class Rows:
    """ONNX feeds of the calibration rows followed by edge rows, and how the FP32 model scores them."""

    feeds: dict[str, np.ndarray]
    calibration: int  # the first rows are calibration rows; the rest are edge rows
    reference: np.ndarray  # FP32 positive probability, each row scored alone
    threshold: float
    metadata: dict

    @property
    def calibration_feeds(self) -> dict[str, np.ndarray]:
        return {k: v[: self.calibration] for k, v in self.feeds.items()}


def search_rows(
    raw: pd.DataFrame, features: dict, fp32: onnx.ModelProto, metadata: dict, edges: pd.DataFrame
) -> Rows:
    """Calibration rows (raw CSV strings) plus ``edges`` (the gate's edge rows built from them),
    encoded by the contract's encoder, and FP32's probability for each row scored alone."""
    records = pd.concat([raw, edges], ignore_index=True).to_dict("records")
    feeds = Encoder(features).encode(records)
    reference = score(fp32.SerializeToString(), feeds, metadata)["alone"]
    return Rows(feeds, len(raw), reference, float(metadata["threshold"]), metadata)


def positive_probability(sess, feeds: dict[str, np.ndarray], metadata: dict) -> np.ndarray:
    output = sess.run([metadata["probability_output"]], feeds)[0]
    return np.asarray(output[:, metadata["positive_class_index"]], dtype=np.float64)


def score(model: bytes, feeds: dict[str, np.ndarray], metadata: dict) -> dict[str, np.ndarray]:
    """Positive probabilities, each row scored alone and all rows as one batch."""
    sess = runtime.session(model)
    rows = len(next(iter(feeds.values())))
    singles = ({k: v[i : i + 1] for k, v in feeds.items()} for i in range(rows))
    alone = np.concatenate([positive_probability(sess, one, metadata) for one in singles])
    return {"alone": alone, "batch": positive_probability(sess, feeds, metadata)}


def measure(model: onnx.ModelProto, rows: Rows, target: Target) -> dict:
    """``measure_one`` on BOTH u8s8 kernel families (onnxship.convert.kernel_families): the figures
    are the worse family's, and ``kernel_families`` says how each family was scored and its ratio.
    A model whose integers are the same on both (7-bit or uint8 weights) is scored once."""
    families, scored = {}, {}
    for family, (twin, how) in family_models(model).items():
        if id(twin) not in scored:
            scored[id(twin)] = measure_one(twin, rows, target)
        families[family] = (how, scored[id(twin)])
    got = [one for _, one in families.values()]
    result = dict(max(got, key=lambda one: (one["worst_ratio"], one["total_ratio"])))
    result["total_ratio"] = max(one["total_ratio"] for one in got)
    result["passed"] = all(one["passed"] for one in got)
    result["bytes"] = len(model.SerializeToString())
    result["kernel_families"] = {
        family: {
            "how": how,
            "max_abs_diff": max(one["alone"]["max_abs_diff"], one["batch"]["max_abs_diff"]),
            "worst_ratio": one["worst_ratio"],
            "passed": one["passed"],
        }
        for family, (how, one) in families.items()
    }
    return result


def measure_one(model: onnx.ModelProto, rows: Rows, target: Target) -> dict:
    """Max |p_fp32 - p_int8| and decision agreement, row by row and as one batch, and the worst
    ratio to the target (<= 1 passes), as this machine's ONNX Runtime computes ``model``."""
    got = score(model.SerializeToString(), rows.feeds, rows.metadata)
    n = len(rows.reference)
    allowed = (1.0 - target.min_agreement) * n
    decided = rows.reference >= rows.threshold
    result, ratios = {}, []
    for how, p in got.items():
        diff = np.abs(p - rows.reference)
        flipped = int(((p >= rows.threshold) != decided).sum())
        result[how] = {
            "max_abs_diff": round(float(diff.max()), 6),
            "agreement": round(1.0 - flipped / n, 6),
            "flipped": flipped,
            "worst_row": int(diff.argmax()),
        }
        ratios += [ratio(float(diff.max()), target.max_abs_diff), ratio(flipped, allowed)]
    result["bytes"] = len(model.SerializeToString())
    result["worst_ratio"] = round(max(ratios), 6)
    result["total_ratio"] = round(sum(ratios), 6)
    result["passed"] = max(ratios) <= 1.0
    return result


def ratio(value: float, limit: float) -> float:
    """``value / limit``; with a zero limit, 0 if value is 0 and a huge ratio otherwise."""
    return value / limit if limit else (1e9 if value > 0 else 0.0)


@dataclass(frozen=True)
class Settings:
    mode: str
    weight_type: str
    per_channel: bool
    reduce_range: bool
    split_blocks: bool
    exclude_search: bool

    @property
    def quantization(self) -> Quantization:
        return Quantization(self.weight_type, self.per_channel, self.reduce_range, self.mode)


@dataclass(frozen=True)
class Trials:
    """What every trial of the search shares: the rows it scores, the target, the settings."""

    rows: Rows
    target: Target
    settings: Settings

    def build(self, model: onnx.ModelProto, exclude: list[str]) -> onnx.ModelProto:
        """``model`` quantized with every candidate node but ``exclude``."""
        calibration = self.rows.calibration_feeds if self.settings.mode == "static" else None
        return quantize(model, self.settings.quantization, nodes_to_exclude=exclude, calibration=calibration)

    def measure(self, model: onnx.ModelProto) -> dict:
        return measure(model, self.rows, self.target)


def search(
    fp32: onnx.ModelProto, rows: Rows, target: Target, settings: Settings
) -> tuple[onnx.ModelProto, dict]:
    """The INT8 model and the report's node section (see the module docstring)."""
    trials = Trials(rows, target, settings)
    graph, splits = split_block_matmuls(fp32) if settings.split_blocks else (fp32, [])
    candidates = [n.name for n in quantizable_nodes(graph)]
    excluded: list[str] = []
    trace = []
    while True:
        current = trials.measure(trials.build(graph, excluded))
        trace.append({"excluded": list(excluded), **current})
        remaining = [n for n in candidates if n not in excluded]
        if current["passed"] or not settings.exclude_search or not remaining:
            break
        tries = {n: trials.measure(trials.build(graph, [*excluded, n])) for n in remaining}
        # Fewest violations first (the sum of the ratios keeps grading when the max diff saturates
        # at 1), then the smaller file.
        best = min(remaining, key=lambda n: (tries[n]["total_ratio"], tries[n]["bytes"]))
        log.info(
            "keeping %s in FP32: worst ratio to the target %.3g -> %.3g",
            best,
            current["worst_ratio"],
            tries[best]["worst_ratio"],
        )
        excluded.append(best)
    if current["passed"]:
        excluded = reinclude(graph, excluded, trials, trace)
    final_graph, final_excluded, final_splits = merge_uniform_blocks(fp32, splits, excluded)
    int8 = trials.build(final_graph, final_excluded)
    nodes = describe_nodes(final_graph, int8, final_excluded, final_splits, trials)
    int8, final_splits = fold_fp32_block_sums(int8, final_splits)
    final = trials.measure(int8)
    plan = [split.to_dict() for split in final_splits]
    return int8, {"nodes": nodes, "split_plan": plan, "search": trace, "final": final}


def reinclude(graph: onnx.ModelProto, excluded: list[str], trials: Trials, trace: list[dict]) -> list[str]:
    """Quantize again, latest first, each excluded node the target no longer needs in FP32.

    The greedy step is myopic: when several nodes break the target together (e.g. 7-bit weights on
    far-out numeric rows), the first exclusion can be a node that was harmless, and once the real
    culprits are out it stays out for nothing. One trial per excluded node undoes that."""
    for name in reversed(list(excluded)):
        trial = [n for n in excluded if n != name]
        got = trials.measure(trials.build(graph, trial))
        if got["passed"]:
            log.info("%s quantized again: the target holds without it in FP32", name)
            trace.append({"excluded": list(trial), "reincluded": name, **got})
            excluded = trial
    return excluded


def merge_uniform_blocks(
    fp32: onnx.ModelProto, splits: list[BlockSplit], excluded: list[str]
) -> tuple[onnx.ModelProto, list[str], list[BlockSplit]]:
    """Undo the split where every block of a node got the same fate: one MatMul is faster than
    several summed, and the exclusion then names the original node. Returns the graph to quantize,
    the nodes to exclude in it, and the plan of the splits it keeps."""
    if not splits:
        return fp32, list(excluded), []
    by_parent = {split.matmul: [block.node for block in split.blocks] for split in splits}
    mixed = {p for p, parts in by_parent.items() if 0 < sum(b in excluded for b in parts) < len(parts)}
    final_excluded = []
    for name in excluded:
        parent = next((p for p, parts in by_parent.items() if name in parts), None)
        if parent is None or parent in mixed:
            final_excluded.append(name)
        elif parent not in final_excluded:
            final_excluded.append(parent)
    graph, kept = split_block_matmuls(fp32, only=mixed)
    return graph, final_excluded, kept


def describe_nodes(
    graph: onnx.ModelProto,
    int8: onnx.ModelProto,
    excluded: list[str],
    splits: list[BlockSplit],
    trials: Trials,
) -> list[dict]:
    """Per candidate node: quantized or not and why, its weight shape, the bytes quantizing it
    saves (or would save) in the final file, and the drift when only it is quantized."""
    from onnx import numpy_helper

    weights = {i.name: i for i in graph.graph.initializer}
    quantized = set(quantized_node_names(graph, int8))
    candidates = [n.name for n in quantizable_nodes(graph)]
    split_from = {block.node: (split.matmul, block) for split in splits for block in split.blocks}
    size = len(int8.SerializeToString())
    out = []
    for node in quantizable_nodes(graph):
        name = node.name
        only = trials.measure(trials.build(graph, [n for n in candidates if n != name]))
        if name in quantized:
            toggled = trials.build(graph, [*excluded, name])
            saved = len(toggled.SerializeToString()) - size
            reason = "quantized: the model stays within the target with it quantized"
        else:
            toggled = trials.build(graph, [n for n in excluded if n != name])
            saved = size - len(toggled.SerializeToString())
            if not trials.settings.exclude_search:
                reason = "not quantized by ONNX Runtime"
            else:
                alone, batch = only["alone"], only["batch"]
                reason = (
                    "kept in FP32: quantizing it breaks the target (alone: max diff "
                    f"{alone['max_abs_diff']:.3g} row by row, {batch['max_abs_diff']:.3g} as a batch, "
                    f"agreement {min(alone['agreement'], batch['agreement']):.4f})"
                )
        entry = {
            "node": name,
            "op": node.op_type,
            "weight_shape": list(numpy_helper.to_array(weights[node.input[1]]).shape),
            "quantized": name in quantized,
            "reason": reason,
            "bytes_saved": saved,
            "only_this_node_quantized": {k: only[k] for k in ("alone", "batch", "worst_ratio", "passed")},
        }
        if name in split_from:
            parent, block = split_from[name]
            entry.update(split_from=parent, weight_rows=block.rows, inputs=block.inputs)
        out.append(entry)
    return out
