"""The INT8 verdict on both families of ONNX Runtime's u8s8 integer kernels, checked on one machine.

ONNX Runtime computes an INT8 MatMul with saturating int16 pair sums on x86 CPUs without VNNI and
with exact sums elsewhere (onnxship.contract.cpu), so the gate's figures on this machine say
nothing, on their own, about the other family. The gate therefore holds INT8 to its tolerances on
each family (onnxship.convert.kernel_families):

- when the graph proves both families compute the same integers (7-bit or uint8 weights), the
  native figures are both families' figures, at no cost;
- otherwise the other family is scored through an emulating twin of the graph on every gate row
  (alone, and the held-out rows as one batch), and its failures are INT8's failures.

An INT8 file marked deployable therefore holds its tolerances on both families.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from onnxship.contract import cpu
from onnxship.contract.artifacts import Contract, with_model
from onnxship.convert.kernel_families import family_models, proof
from onnxship.serve.scorer import Scorer

HEADLINE = ("rows", "max_abs_diff", "agreement", "flipped")


@dataclass(frozen=True)
class Scored:
    """Positive probabilities of the gate's rows, each row alone, and of the held-out rows as one batch."""

    alone: np.ndarray
    batched: np.ndarray


# Judges one backend's probabilities against scikit-learn's: (probabilities, rows) -> (figures, reasons).
Judge = Callable[[np.ndarray, slice], tuple[dict, list[str]]]


def check_families(
    contract: Contract, rows: list[dict], n_test: int, native: Scored, judge: Judge
) -> tuple[dict, list[str]]:
    """The report's ``kernel_families`` section for the INT8 backend and the reasons it fails.

    ``rows`` are the gate's raw rows (the first ``n_test`` held out) and ``native`` what this
    machine's ONNX Runtime gave for them (each row alone, the held-out rows as one batch);
    ``judge`` compares probabilities with scikit-learn's on a slice of the rows, with the INT8
    tolerances. Each family gets the same figures and verdict, however it was scored."""
    import onnx

    model = onnx.ModelProto.FromString(contract.model)
    machine = cpu.features()
    section: dict = {
        "cpu": machine,
        "native": machine["kernel_family"],
        "recorded_in_metadata": contract.metadata.get("kernel_family"),
        "proof": proof(model),
    }
    try:
        models = family_models(model)
    except ValueError as exc:  # an integer op the emulation does not know: fail closed
        return {**section, "checked": False}, [f"cannot check INT8 on both u8s8 kernel families ({exc})"]
    reasons = []
    for family, (twin, how) in models.items():
        if how == "emulated":
            scorer = Scorer.from_contract(with_model(contract, twin.SerializeToString()))
            scored = Scored(
                np.array([scorer.score_record(row)[0] for row in rows]),
                scorer.score_records(rows[:n_test])[0],
            )
        else:
            scored = native
        figures, failed = judge(scored.alone, slice(0, len(rows)))
        batch, batch_failed = judge(scored.batched, slice(0, n_test))
        section[family] = {
            "how": how,
            **{k: figures[k] for k in HEADLINE},
            "test_rows_one_batch": {k: batch[k] for k in HEADLINE},
            "passed": not failed and not batch_failed,
        }
        if how == "emulated":  # the native figures' failures are already the backend's reasons
            where = f"on {family} CPUs (emulated, onnxship.convert.kernel_families)"
            reasons += [f"{where}: {r}" for r in failed]
            reasons += [f"{where}, the held-out rows as one batch: {r}" for r in batch_failed]
    return {**section, "checked": True}, reasons
