"""File input/output at the edges: atomic writes, hashes, JSON, versions (standard library only)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np

from onnxship.core.errors import UserError


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **kwargs) -> Iterator[IO]:
    """A file that appears at ``path`` only if the block completes (temp file + rename), so a reader
    sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the mode `open` would (0666 minus the umask), so a
        # service running as another user can read model.onnx.
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask. Python < 3.13 has no getter: read /proc on Linux, else set and restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_bytes(obj: Any) -> bytes:
    """JSON, deterministically: key order as given, Python's float repr, a trailing newline."""
    return (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode("utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run the stage that writes it first (dvc repro)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def read_required(path: str | Path, *keys: str) -> Any:
    """``read_json(path)``, checked to have every dotted key in ``keys`` (``require``)."""
    obj = read_json(path)
    require(obj, path, *keys)
    return obj


def require(obj: Any, path: str | Path, *keys: str) -> None:
    """Check that the JSON artifact ``obj`` read from ``path`` has every dotted key in ``keys``
    (e.g. "settings.threads"), so a truncated or hand-edited file is a clear error, not a KeyError."""
    for dotted in keys:
        node = obj
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise UserError(
                    f"{path} is incomplete (no '{dotted}'): re-run the stage that writes it (dvc repro)"
                )
            node = node[part]


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (and Python), to record what built an artifact."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def csv_text(header: list[str], rows) -> str:
    """A small CSV (plot data) as text: floats as repr (every digit, so the file is the same on every
    machine and a re-run changes no byte), "\n" line ends."""
    lines = [",".join(header)]
    lines += [
        ",".join(repr(float(v)) if isinstance(v, float | np.floating) else str(v) for v in row)
        for row in rows
    ]
    return "\n".join(lines) + "\n"
