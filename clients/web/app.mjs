// The onnxship web client: checks an artifacts folder (?artifacts=<URL>) as the other clients do and
// scores CSV files in the browser with onnxruntime-web (WASM). Nothing leaves the machine: the page
// fetches the artifacts and the runtime from the server that serves it, and reads the CSV locally.
//
// The checks, the parsing rules and the refusals are the Node client's own (../node/contract.mjs,
// shared); what is the browser's here: fetching files, Web Crypto's sha256, onnxruntime-web, the page.
//
// For automation: window.onnxshipReady (a Promise: resolves once the artifacts are verified, rejects
// with the one-line "error: ..." message the other clients print) and window.onnxshipScore(csv,
// {batchSize}) (csv: text or bytes) -> Promise of {rows: [{row, probability, decision, label}],
// invalid: [{row, line, error}]}, in input order.

import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import {
  csvParser, int8Model, loadContract, scoreLines, UserError, utf8Lines,
} from "../node/contract.mjs";
import { renderCard } from "./card.mjs";

const params = new URLSearchParams(window.location.search);
const BACKENDS = ["fp32", "int8"];

// onnxruntime-web fetches its .wasm from this folder: an absolute URL (a relative one would resolve
// against the runtime's module and miss), served by the same server, no CDN.
ort.env.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page; one thread, as the other clients

const $ = (id) => document.getElementById(id);

function artifactsBase() {
  const given = params.get("artifacts") || "../../artifacts/";
  return new URL(given.endsWith("/") ? given : `${given}/`, window.location.href);
}

async function fetchBytes(url) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch (err) {
    throw new UserError(`${url} cannot be fetched (${err.message}): is the server running?`);
  }
  if (response.status === 404) return null;
  if (!response.ok) throw new UserError(`${url} cannot be fetched (HTTP ${response.status})`);
  return new Uint8Array(await response.arrayBuffer());
}

async function sha256(bytes) {
  if (!window.crypto || !window.crypto.subtle) {
    throw new UserError("Web Crypto is not available: open the page over https or from localhost");
  }
  const digest = await window.crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function verify() {
  const backend = params.get("backend") || "fp32";
  if (!BACKENDS.includes(backend)) throw new UserError(`?backend=${backend}: use fp32 or int8`);
  const versionCheck = params.get("version-check") || "strict";
  if (!["strict", "warn", "off"].includes(versionCheck)) {
    throw new UserError("?version-check= must be strict, warn or off");
  }
  const base = artifactsBase();
  const where = (name) => new URL(name, base).href;
  const read = (name) => fetchBytes(new URL(name, base));
  const contract = await loadContract({
    folder: base.href.replace(/\/$/, ""),
    hint: "point ?artifacts= at the export's folder",
    where,
    read,
    sha256,
    runtime: { name: "onnxruntime-web", version: ort.env.versions.web, override: "add &version-check=warn to the URL" },
    versionCheck,
    createSession: (bytes) => ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] }),
    model: backend === "int8" ? () => int8Model(read, where) : undefined,
  });
  return { ...contract, backend, base };
}

// One line, as the other clients print it: "error: ...".
function oneLine(err) {
  if (err instanceof UserError) return `error: ${err.message}`;
  return `error: unexpected failure, please report it: ${String(err && err.message).split("\n")[0]}`;
}

const ready = verify();
window.onnxshipReady = ready.then(
  (contract) => ({ backend: contract.backend, model: contract.modelFile, warning: contract.warning }),
  (err) => { throw new Error(oneLine(err)); },
);

// Scores a CSV (text, or the file's bytes): the contract's parsing rules; a row that breaks them is
// listed in ``invalid`` and the others are scored (the Python scorer's --skip-invalid). A file-level
// problem (no header, a missing column, broken quoting, not UTF-8) rejects with its one line.
async function scoreCsv(csv, { batchSize = 1024, name = "the CSV" } = {}) {
  const rows = [];
  const invalid = [];
  try {
    const contract = await ready;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new UserError(`batch size must be at least 1, got ${batchSize}`);
    }
    const bytes = typeof csv === "string" ? new TextEncoder().encode(csv) : new Uint8Array(csv);
    await scoreLines(contract, ort.Tensor, utf8Lines([bytes], name), {
      parse: csvParser(contract.inputs.map((input) => input.name), name),
      batchSize,
      onBatch: (scored) => { rows.push(...scored); },
      onInvalid: (err) => invalid.push({ row: err.row, line: err.line, error: err.message }),
    });
  } catch (err) {
    throw new Error(oneLine(err));
  }
  return { rows, invalid };
}

window.onnxshipScore = (csv, options) => scoreCsv(csv, options);

// --- the page ---------------------------------------------------------------------------------------

const SHOWN = 500; // rows drawn in the table; the download holds them all

// The Python scorer's CSV scores: row,probability,decision (1/0),label; a cell quoted only if it must be.
const csvCell = (text) => (/[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);

function scoresCsv(rows) {
  return ["row,probability,decision,label",
    ...rows.map((r) => `${r.row},${r.probability},${r.decision ? 1 : 0},${csvCell(String(r.label))}`),
  ].join("\n") + "\n";
}

function showResult(file, { rows, invalid }) {
  const positives = rows.filter((r) => r.decision).length;
  $("result-summary").textContent = `${file}: ${rows.length} rows scored, ${positives} positive, `
    + `${invalid.length} invalid`;
  const body = $("scores").tBodies[0];
  body.replaceChildren(...rows.slice(0, SHOWN).map((r) => {
    const tr = document.createElement("tr");
    tr.className = r.decision ? "positive" : "";
    for (const text of [r.row, r.probability.toFixed(6), r.decision ? "yes" : "no", r.label]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
  $("scores-more").textContent = rows.length > SHOWN ? `first ${SHOWN} of ${rows.length} rows shown` : "";
  $("invalid").replaceChildren(...invalid.map((bad) => {
    const li = document.createElement("li");
    li.textContent = bad.error;
    return li;
  }));
  $("invalid-block").hidden = invalid.length === 0;
  const link = $("download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([scoresCsv(rows)], { type: "text/csv" }));
  link.download = `${file.replace(/\.csv$/i, "")}.scores.csv`;
  $("result").hidden = false;
}

async function scoreFile(file) {
  $("score-error").textContent = "";
  try {
    showResult(file.name, await scoreCsv(await file.arrayBuffer(), { name: file.name }));
  } catch (err) {
    $("score-error").textContent = err.message;
    $("result").hidden = true;
  }
}

function wireInput() {
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) scoreFile(event.target.files[0]);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) scoreFile(event.dataTransfer.files[0]);
  });
}

ready.then(
  (contract) => {
    const m = contract.metadata;
    $("status").className = "ok";
    $("status").textContent = `Verified: ${contract.modelFile} (${contract.backend.toUpperCase()}) and `
      + `onnx_features.json match their sha256; onnxruntime-web ${ort.env.versions.web}; positive if `
      + `p ${m.decision_operator} ${m.threshold.toFixed(4)} (${m.positive_label} / ${m.negative_label}).`;
    if (contract.warning) $("warning").textContent = `warning: ${contract.warning}`;
    $("input").hidden = false;
    wireInput();
    renderCard($("card"), contract.base, { fetchBytes }).catch((err) => {
      $("card").textContent = `The model card cannot be drawn: ${err.message}`;
      $("card").dataset.ready = "true";
    });
  },
  (err) => {
    $("status").className = "refused";
    $("status").textContent = oneLine(err);
  },
);
