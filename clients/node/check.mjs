#!/usr/bin/env node
// Checks an artifacts folder as the JavaScript clients do before they score (contract.mjs's
// loadContract: each file against its JSON Schema, the hashes, the rules no schema states, the graph
// against the contract), and says so in one line: "ok: ..." and exit 0, or "error: ..." and exit 2.
// The Python peer is `python -m onnxship.serve check`; tests/test_contract_verdicts.py runs both.
//
//   node check.mjs --artifacts DIR [--version-check strict|warn|off] [--backend fp32|int8]

import { loadArtifacts } from "./artifacts.mjs";
import { UserError } from "./contract.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};

try {
  const contract = await loadArtifacts(option("--artifacts", "artifacts"), option("--version-check", "strict"),
    option("--backend", "fp32"));
  const version = contract.features.schema_version;
  process.stdout.write(`ok: ${contract.modelFile}, onnx_features.json v${version}, `
    + `${contract.inputs.length} inputs in ${contract.layout.length} tensors\n`);
} catch (err) {
  if (!(err instanceof UserError)) {
    process.stderr.write(`error: unexpected failure, please report it: ${String(err && err.message).split("\n")[0]}\n`);
    process.exit(1);
  }
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(2);
}
