// The contract of an artifacts folder on disk, for the Node client and its benchmark: contract.mjs's
// checks, with node:fs to read, node:crypto to hash and onnxruntime-node to run.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import ort from "onnxruntime-node";
import { int8Model, loadContract } from "./contract.mjs";
import { int8FamilyWarning } from "./cpu.mjs";

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

// ``backend`` "int8" scores with model.int8.onnx, checked against quantize_report.json's sha256;
// on a CPU whose integer kernels are not the family onnx_metadata.json records, one warning line on
// stderr (and ``kernelWarning`` on the contract).
export async function loadArtifacts(folder, versionCheck, backend = "fp32") {
  const where = (name) => path.join(folder, name);
  const read = async (name) => (existsSync(where(name)) ? readFileSync(where(name)) : null);
  const contract = await loadContract({
    folder,
    hint: "point --artifacts at the export's folder",
    where,
    read,
    sha256: async (bytes) => sha256(bytes),
    runtime: { name: "onnxruntime-node", version: ort.env.versions.node, override: "pass --version-check warn" },
    versionCheck,
    createSession: (bytes) => ort.InferenceSession.create(bytes, {
      executionProviders: ["cpu"], intraOpNumThreads: 1, interOpNumThreads: 1,
    }),
    model: backend === "int8" ? () => int8Model(read, where) : undefined,
  });
  const warning = backend === "int8" ? int8FamilyWarning(contract.metadata.kernel_family) : null;
  if (warning && !warned.has(warning)) process.stderr.write(`warning: ${warning}\n`);
  if (warning) warned.add(warning);
  return { ...contract, kernelWarning: warning };
}

const warned = new Set();
