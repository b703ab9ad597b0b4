"""ONNX Runtime sessions and the version check a client makes against the exporting runtime."""

from __future__ import annotations

import re
import warnings

import onnxruntime as ort

from onnxship.core.errors import UserError

VERSION_CHECKS = ("strict", "warn", "off")


class VersionWarning(UserWarning):
    """The installed ONNX Runtime differs from the exporting one in a way that does not stop scoring."""


def session(model: str | bytes, threads: int = 1) -> ort.InferenceSession:
    """A CPU session for a model file path (or the serialized model itself): ``threads`` intra-op
    threads and one inter-op thread, so that the caller decides the parallelism."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _major_minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def check_runtime(recorded: str, installed: str = ort.__version__, policy: str = "strict") -> str | None:
    """Compare the ONNX Runtime that exported the model with the installed one.

    A different major version fails under ``strict``; any other difference in major.minor is a
    warning (returned and emitted as a VersionWarning). ``off`` checks nothing.
    """
    if policy not in VERSION_CHECKS:
        raise UserError(f"version check {policy!r} is not one of {', '.join(VERSION_CHECKS)}")
    if policy == "off":
        return None
    want, have = _major_minor(recorded), _major_minor(installed)
    if want is None or have is None:
        message = f"cannot compare onnxruntime versions (exported with {recorded!r}, installed {installed!r})"
    elif want == have:
        return None
    elif want[0] != have[0] and policy == "strict":
        raise UserError(
            f"onnxruntime {installed} is installed but the model was exported and checked with "
            f"{recorded} (a different major version): install onnxruntime=={recorded}, "
            "or pass --version-check warn to score anyway"
        )
    else:
        message = (
            f"onnxruntime {installed} is installed but the model was exported and checked with {recorded}: "
            "scores may differ slightly from the parity report"
        )
    warnings.warn(message, VersionWarning, stacklevel=2)
    return message


def unchecked_run(sess: ort.InferenceSession):
    """``sess.run`` without onnxruntime's Python-side check of the feed names.

    That check looks each graph input up in a list of the feed names, so one call costs time in the
    square of the number of inputs: 73 ms per call at 2,000 inputs (onnxruntime 1.32,
    ``InferenceSession._validate_input``), which made the parity gate's row-by-row scoring of a wide
    table quadratic. Callers that always feed exactly the graph's inputs (the Scorer checks this when
    it loads) can skip it; the C++ run still checks every input's name, type and shape.
    """
    inner = getattr(sess, "_sess", None)
    if inner is None:  # another onnxruntime build: the public, checked call
        return sess.run

    def run(output_names, feeds):
        return inner.run(output_names, feeds, None)

    return run
