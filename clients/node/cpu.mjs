// Which integer kernels ONNX Runtime runs on this CPU: the same rules as onnxship/contract/cpu.py
// (tests/test_node_client.py checks that both give the same family for the same flags).
// x86-64 with AVX2 or AVX-512BW but no VNNI adds pairs of uint8 x int8 products in a saturating
// int16 ("u8s8-int16-saturating"); VNNI, AMX, ARM64 and x86 without AVX2 sum exactly ("u8s8-exact").
// Node only (node:fs, node:os): the flags come from /proc/cpuinfo on Linux.

import { readFileSync } from "node:fs";
import os from "node:os";

export const SATURATING = "u8s8-int16-saturating";
export const EXACT = "u8s8-exact";
export const UNKNOWN = "unknown";
const FAMILIES = [SATURATING, EXACT, UNKNOWN];
const AVX512_CORE = ["avx512f", "avx512bw", "avx512dq", "avx512vl"];
const ARCH = { x64: "x86_64", ia32: "i686", arm64: "aarch64" };

// ``machine`` as Python's platform.machine() spells it; ``flags`` a Set, or null when unreadable.
// MLAS's dispatch order: AVX2 (saturating), AVX-VNNI (exact), AVX-512 core (saturating again),
// AVX512-VNNI (exact), AMX (exact).
export function kernelFamily(machine, flags) {
  const arch = machine.toLowerCase();
  if (arch === "aarch64" || arch === "arm64") return EXACT;
  if (!["x86_64", "amd64", "i386", "i686", "x86"].includes(arch) || flags === null) return UNKNOWN;
  if (!flags.has("avx2")) return EXACT;
  let family = flags.has("avx_vnni") ? EXACT : SATURATING;
  if (AVX512_CORE.every((flag) => flags.has(flag))) family = flags.has("avx512_vnni") ? EXACT : SATURATING;
  if (flags.has("amx_tile") && flags.has("amx_int8")) family = EXACT;
  return family;
}

// The flags of the first processor in a /proc/cpuinfo text (x86 "flags", ARM "Features").
export function readFlags(text) {
  for (const line of text.split("\n")) {
    const at = line.indexOf(":");
    const key = line.slice(0, at).trim();
    if (at >= 0 && (key === "flags" || key === "Features")) return new Set(line.slice(at + 1).split(/\s+/).filter(Boolean));
  }
  return new Set();
}

export function thisFamily() {
  let flags = null;
  try {
    flags = readFlags(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    flags = null;
  }
  return kernelFamily(ARCH[os.arch()] || os.arch(), flags);
}

// The warning for serving model.int8.onnx here when onnx_metadata.json's kernel_family records
// another family; null when the families match or nothing (or something unknown) is recorded.
export function int8FamilyWarning(recorded, here = thisFamily()) {
  if (!FAMILIES.includes(recorded) || recorded === here) return null;
  return `model.int8.onnx was verified on a CPU with ${recorded} integer kernels (onnx_metadata.json ` +
    `kernel_family); this CPU has ${here}: the parity gate checked this family through its proof or ` +
    "emulation, not on such a CPU (docs/parity.md, 'INT8 on every CPU')";
}
