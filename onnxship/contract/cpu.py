"""Which integer kernels ONNX Runtime runs on this CPU, and whether they can saturate.

ONNX Runtime's MLAS library picks its u8s8 (uint8 activations x int8 weights) matrix kernel when it
starts, from the CPU's features (onnxruntime/core/mlas/lib/platform.cpp):

- x86-64 with AVX2 (or AVX-512BW) but no VNNI: ``vpmaddubsw`` adds each pair of adjacent u8*s8
  products into a SATURATING int16. Two products of 255 * -128 are -65,280, far outside int16, so a
  large activation against a large weight is clipped: the ``u8s8-int16-saturating`` family.
- x86-64 with AVX-VNNI, AVX512-VNNI or AMX-INT8: ``vpdpbusd``/AMX sum four products straight into
  int32; ARM64 uses udot/sdot or widening multiplies; x86 without AVX2 widens to int16 first: all
  exact integer sums, the ``u8s8-exact`` family.

uint8 x uint8 weights (``quantize.weight_type: QUInt8``) and 7-bit int8 weights
(``quantize.reduce_range``: |w| <= 64, so a pair is at most 2 * 255 * 64 = 32,640 < 32,767) give
the same integers on both families. onnxship.convert.kernel_families proves which case a graph is in
and emulates the other family when it cannot prove it.

stdlib only (a service imports it): on Linux the flags come from /proc/cpuinfo; elsewhere only the
architecture is known, so an x86-64 CPU is ``unknown``.
"""

from __future__ import annotations

import platform
import sys
from functools import cache
from pathlib import Path

SATURATING = "u8s8-int16-saturating"
EXACT = "u8s8-exact"
UNKNOWN = "unknown"
FAMILIES = (SATURATING, EXACT)

# The /proc/cpuinfo flags MLAS reads to choose its integer kernels (Linux spellings).
KERNEL_FLAGS = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
)
AVX512_CORE = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}
X86 = {"x86_64", "amd64", "i386", "i686", "x86"}
ARM64 = {"aarch64", "arm64"}


def kernel_family(machine: str, flags: set[str] | None) -> str:
    """The u8s8 kernel family for an architecture (``platform.machine()``) and its CPU flags
    (None when they could not be read), following MLAS's dispatch order: AVX2 (saturating), then
    AVX-VNNI (exact), AVX-512 core (saturating again), AVX512-VNNI (exact), AMX (exact)."""
    arch = machine.lower()
    if arch in ARM64:
        return EXACT
    if arch not in X86 or flags is None:
        return UNKNOWN
    if "avx2" not in flags:
        return EXACT  # MLAS's SSE kernels widen to int16 before multiplying
    family = EXACT if "avx_vnni" in flags else SATURATING
    if flags >= AVX512_CORE:
        family = EXACT if "avx512_vnni" in flags else SATURATING
    if {"amx_tile", "amx_int8"} <= flags:
        family = EXACT
    return family


def read_flags(cpuinfo: str) -> set[str]:
    """The flags of the first processor in a /proc/cpuinfo text (x86 says ``flags``, ARM ``Features``)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


@cache
def features() -> dict:
    """This machine's record: architecture, where the flags came from, the kernel-selecting flags
    it has (sorted, so reports stay byte-identical on one machine), and the kernel family."""
    machine = platform.machine() or "unknown"
    try:
        flags: set[str] | None = read_flags(Path("/proc/cpuinfo").read_text(errors="replace"))
        source = "/proc/cpuinfo"
    except OSError:
        flags, source = None, "platform.machine() only (no /proc/cpuinfo)"
    return {
        "machine": machine,
        "source": source,
        "flags": sorted(set(KERNEL_FLAGS) & flags) if flags is not None else None,
        "kernel_family": kernel_family(machine, flags),
    }


def family() -> str:
    """This machine's u8s8 kernel family (see ``kernel_family``)."""
    return features()["kernel_family"]


def int8_family_warning(recorded: object, machine_family: str | None = None) -> str | None:
    """The warning a client gives when it serves the INT8 file on a CPU whose kernel family is not
    the one onnx_metadata.json's ``kernel_family`` records (None: same family, or nothing recorded)."""
    here = family() if machine_family is None else machine_family
    if recorded not in (*FAMILIES, UNKNOWN) or recorded == here:
        return None
    return (
        f"warning: model.int8.onnx was verified on a CPU with {recorded} integer kernels "
        f"(onnx_metadata.json kernel_family); this CPU has {here}: the parity gate checked this family "
        "through its proof or emulation, not on such a CPU (docs/parity.md, 'INT8 on every CPU')"
    )


_warned: set[str] = set()


def warn_int8_family(recorded: object) -> str | None:
    """Print ``int8_family_warning`` on stderr, once per process; returns it (None if nothing to say)."""
    message = int8_family_warning(recorded)
    if message and message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr, flush=True)
    return message
