// Chainproof certificate check in the browser (the /verify page): extracts the certificate a PDF carries, checks
// it with the product page's verifier (verify.js: WebCrypto Ed25519 and SHA-256, RFC 9162 proofs, the log key
// pinned in the page), then asks the ledger whether a recall has revoked it since. Nothing is uploaded: the file
// never leaves the browser. Runs in browsers and in Node (tests/js/certificate.test.mjs).
"use strict";

import {
  b64decode, b64encode, leafHash, openNote, parseCheckpoint, parseLeaf, parseVerifierKey, sha256, verifyBatch,
  verifyConsistency,
} from "./verify.js";

export const ATTACHMENT_NAME = "chainproof-certificate.json";
export const CERTIFICATE_FORMAT = "chainproof-certificate/v2";
const CERTIFICATE_HEADER = "chainproof certificate v1\n";
export const MOST_BYTES = 64 * 1024 * 1024; // a certificate of a very long batch is tens of MiB at most

const enc = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

export class CertificateFileError extends Error {}

// -- the PDF's attachment ---------------------------------------------------------------------------------------

function startsWith(bytes, text) {
  const head = enc.encode(text);
  return bytes.length >= head.length && head.every((b, i) => bytes[i] === b);
}

// A PDF literal string's bytes: (...) with its escapes (ISO 32000-1 7.3.4.2).
function literalBytes(body) {
  const out = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== "\\") { out.push(c.charCodeAt(0) & 0xff); continue; }
    const next = body[++i];
    const simple = { n: 10, r: 13, t: 9, b: 8, f: 12, "(": 40, ")": 41, "\\": 92 }[next];
    if (simple !== undefined) { out.push(simple); continue; }
    if (/[0-7]/.test(next)) {
      let digits = next;
      while (digits.length < 3 && /[0-7]/.test(body[i + 1] || "")) digits += body[++i];
      out.push(parseInt(digits, 8) & 0xff);
      continue;
    }
    if (next === "\r" && body[i + 1] === "\n") i++; // an escaped line end continues the string
    else if (next !== "\r" && next !== "\n" && next !== undefined) out.push(next.charCodeAt(0) & 0xff);
  }
  return Uint8Array.from(out);
}

// A file name as text: UTF-16BE with its byte-order mark, else PDFDocEncoding (ASCII for our name).
function pdfText(bytes) {
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder("utf-16be").decode(bytes.slice(2));
  return String.fromCharCode(...bytes);
}

function pdfString(token) {
  if (token.startsWith("<")) {
    const hex = token.slice(1, -1).replace(/\s+/g, "");
    const bytes = new Uint8Array(Math.ceil(hex.length / 2));
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt((hex.slice(2 * i, 2 * i + 2) + "0").slice(0, 2), 16);
    return pdfText(bytes);
  }
  return pdfText(literalBytes(token.slice(1, -1)));
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// The certificate file a Chainproof PDF carries as its attachment `chainproof-certificate.json`; a JSON file is
// returned as it is. Reads PDFs as Chainproof writes them (and as tools that rewrite them without object streams
// do): every object in the file, later definitions replacing earlier ones (incremental updates).
export async function extractCertificate(bytes) {
  if (!startsWith(bytes, "%PDF-")) return bytes;
  const text = new TextDecoder("latin1").decode(bytes); // one character per byte: offsets are byte offsets
  const objects = new Map();
  for (const m of text.matchAll(/(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\b/g)) {
    objects.set(`${Number(m[1])} ${Number(m[2])}`, m.index + m[0].length);
  }
  const body = (start) => {
    const end = text.indexOf("endobj", start);
    const stream = text.indexOf("stream", start);
    return text.slice(start, stream >= 0 && (end < 0 || stream < end) ? stream : end < 0 ? text.length : end);
  };
  const references = new Set();
  for (const start of objects.values()) {
    const dict = body(start);
    const ef = /\/EF\s*<<[^>]*?\/(?:UF|F)\s+(\d+)\s+(\d+)\s+R/.exec(dict);
    if (!ef) continue;
    const names = [...dict.matchAll(/\/(UF|F)\s*(\((?:\\[\s\S]|[^\\)])*\)|<[0-9A-Fa-f\s]*>)/g)].map((m) => pdfString(m[2]));
    if (names.includes(ATTACHMENT_NAME)) references.add(`${Number(ef[1])} ${Number(ef[2])}`);
  }
  const found = new Map(); // contents -> bytes: the same file named twice is one file
  for (const reference of references) {
    const start = objects.get(reference);
    if (start === undefined) throw new CertificateFileError("the PDF names an attached file it does not hold");
    const dict = body(start);
    const at = text.indexOf("stream", start);
    let length = /\/Length\s+(\d+)(?:\s+(\d+)\s+R)?/.exec(dict);
    if (!length || at < 0) throw new CertificateFileError("the PDF's attached file cannot be read");
    let size = Number(length[1]);
    if (length[2] !== undefined) {
      const holder = objects.get(`${Number(length[1])} ${Number(length[2])}`);
      const value = holder === undefined ? null : /^\s*(\d+)/.exec(body(holder));
      if (!value) throw new CertificateFileError("the PDF's attached file has no readable length");
      size = Number(value[1]);
    }
    let first = at + "stream".length;
    if (text[first] === "\r") first++;
    if (text[first] === "\n") first++;
    let data = bytes.slice(first, first + size);
    const filters = [...(/\/Filter\s*(\[[^\]]*\]|\/\w+)/.exec(dict)?.[1] ?? "").matchAll(/\/(\w+)/g)].map((m) => m[1]);
    for (const filter of filters) {
      if (filter !== "FlateDecode") {
        throw new CertificateFileError(`the PDF's attached file is encoded with ${filter}, which this page does not read`);
      }
      try {
        data = await inflate(data);
      } catch (e) {
        throw new CertificateFileError("the PDF's attached file is damaged (it does not decompress)");
      }
    }
    found.set(b64encode(data), data);
  }
  if (!found.size && /\/Type\s*\/ObjStm\b/.test(text)) {
    throw new CertificateFileError(
      `no ${ATTACHMENT_NAME} found: this PDF keeps its objects compressed (it was re-saved by another program), `
      + "which this page does not read; use the PDF as it was issued, or its certificate JSON");
  }
  if (!found.size) throw new CertificateFileError(`the PDF carries no ${ATTACHMENT_NAME}: it is not a Chainproof certificate`);
  if (found.size > 1) {
    throw new CertificateFileError(`the PDF carries ${found.size} different files named ${ATTACHMENT_NAME}: refusing to pick one`);
  }
  return [...found.values()][0];
}

// -- the certificate ---------------------------------------------------------------------------------------------

export function parseCertificate(bytes) {
  let data;
  try {
    data = JSON.parse(utf8.decode(bytes));
  } catch (e) {
    throw new CertificateFileError("not a certificate file (not valid JSON)");
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new CertificateFileError("not a certificate file");
  }
  if (data.format === "chainproof-certificate/v1") {
    throw new CertificateFileError(
      "this certificate is in the first format (chainproof-certificate/v1), which only the Chainproof CLI checks: "
      + "chainproof certificate verify FILE");
  }
  if (data.format !== CERTIFICATE_FORMAT) throw new CertificateFileError(`not a certificate file (format is not ${CERTIFICATE_FORMAT})`);
  for (const [name, kind] of [["certificate", "string"], ["checkpoint", "string"], ["log_key", "string"]]) {
    if (typeof data[name] !== kind) throw new CertificateFileError(`the certificate file has no ${name}`);
  }
  for (const name of ["entries", "registrations"]) {
    if (!Array.isArray(data[name])) throw new CertificateFileError(`the certificate file has no ${name}`);
  }
  return data;
}

// The certificate number: the first 16 hex digits of SHA-256 of the signed note, in groups of four.
export async function certificateSerial(note) {
  const hex = Array.from((await sha256(enc.encode(note))).slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return hex.toUpperCase().match(/.{4}/g).join("-");
}

// Equal as JSON values, whatever the order of object keys (the claims are in canonical form, keys sorted).
function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
}
const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

// Check a certificate against the log key this page pins: the log's signature on it, then its evidence with the
// product page's verifier (every event's signature by a key the log binds to its signer, every hash link from the
// origin, the inclusion proof into the signed checkpoint), and that the claims name exactly those entries and that
// checkpoint. Returns {problems, claims, serial, events, names}; the certificate holds only if problems is empty.
export async function verifyCertificate(certificate, pinnedKey) {
  const problems = [];
  const result = { problems, claims: null, serial: await certificateSerial(certificate.certificate), events: [], names: new Map() };
  const key = await parseVerifierKey(pinnedKey);
  if (certificate.log_key.trim() !== pinnedKey.trim()) {
    problems.push({ index: null, message: `issued by another ledger (key ${certificate.log_key.trim()}), not by this one` });
    return result;
  }
  let text;
  try {
    text = await openNote(certificate.certificate, key);
  } catch (e) {
    problems.push({ index: null, message: "the ledger's signature on the certificate does not verify: " + e.message.replace("checkpoint", "certificate") });
    return result;
  }
  if (!text.startsWith(CERTIFICATE_HEADER)) {
    problems.push({ index: null, message: "the signed note is not a certificate" });
    return result;
  }
  let claims;
  try {
    claims = JSON.parse(text.slice(CERTIFICATE_HEADER.length, -1));
  } catch (e) {
    claims = null;
  }
  if (!claims || typeof claims !== "object" || ![1, 2].includes(claims.v) || !claims.batch || !claims.checkpoint) {
    problems.push({ index: null, message: "the certificate's claims cannot be read" });
    return result;
  }
  result.claims = claims;
  const { sku, lot } = claims.batch;
  problems.push(...(await verifyBatch({
    log_key: pinnedKey,
    checkpoint: certificate.checkpoint,
    entries: certificate.entries,
    registrations: certificate.registrations,
    batch: { sku, lot },
  })));
  try {
    const checkpoint = parseCheckpoint(certificate.checkpoint.slice(0, certificate.checkpoint.lastIndexOf("\n\n") + 1));
    if (!same(claims.checkpoint, { size: Number(checkpoint.size), root: b64encode(checkpoint.root) })) {
      problems.push({ index: null, message: "the certificate names another checkpoint than its evidence" });
    }
  } catch (e) {
    problems.push({ index: null, message: "the certificate's checkpoint cannot be read: " + e.message });
  }
  const listed = [];
  for (const item of certificate.entries) {
    try {
      const leaf = b64decode(item.leaf);
      const entry = parseLeaf(leaf);
      listed.push({ index: item.index, type: entry.statement.type, hash: b64encode(await leafHash(leaf)) });
      result.events.push({ index: item.index, loggedAt: entry.loggedAt, statement: entry.statement });
    } catch (e) {
      listed.push(null); // reported by verifyBatch
    }
  }
  if (!same(claims.entries, listed)) {
    problems.push({ index: null, message: "the certificate's list of events does not match the events it carries" });
  }
  for (const item of certificate.registrations) {
    try {
      const s = parseLeaf(b64decode(item.leaf)).statement;
      if (s.type === "actor" && s.data && typeof s.data.name === "string") result.names.set(s.data.id, s.data.name);
    } catch (e) {
      // reported by verifyBatch
    }
  }
  return result;
}

// -- since the certificate: the live ledger ---------------------------------------------------------------------

const quote = (part) => encodeURIComponent(part);

// Is the certificate still good on the live ledger? The ledger's latest evidence of the batch (its newest events,
// checked like a product page checks them) must come with a checkpoint that extends the certificate's, proven by a
// consistency proof; a recall among those events revokes the certificate. `fetchJson(path)` reads this server.
// Returns {state: "revoked" | "good" | "failed", size, recall?, problems}.
export async function recallStatus(certificate, claims, pinnedKey, fetchJson) {
  const problems = [];
  const { sku, lot } = claims.batch;
  const evidence = await fetchJson(`/v1/batches/${quote(sku)}/${quote(lot)}/evidence`);
  if (evidence.log_key.trim() !== pinnedKey.trim()) {
    return { state: "failed", size: null, problems: [{ index: null, message: "the ledger now answers with another key" }] };
  }
  problems.push(...(await verifyBatch(evidence)));
  const key = await parseVerifierKey(pinnedKey);
  const then = parseCheckpoint(await openNote(certificate.checkpoint, key));
  let now;
  try {
    now = parseCheckpoint(await openNote(evidence.checkpoint, key));
  } catch (e) {
    return { state: "failed", size: null, problems: [{ index: null, message: "the ledger's checkpoint: " + e.message }] };
  }
  try {
    if (now.size < then.size) throw new Error(`the ledger is now smaller (${now.size}) than when it issued the certificate (${then.size})`);
    const proof = now.size > then.size
      ? (await fetchJson(`/v1/log/proof/consistency?first=${then.size}&second=${now.size}`)).hashes.map(b64decode)
      : [];
    await verifyConsistency(then.size, now.size, then.root, now.root, proof);
  } catch (e) {
    problems.push({ index: null, message: "the ledger's history since the certificate does not extend it: " + e.message });
  }
  let recall = null;
  for (const item of evidence.entries) {
    try {
      const entry = parseLeaf(b64decode(item.leaf));
      const s = entry.statement;
      if (s.type === "recall" && s.sku === sku && s.lot === lot) recall = { index: item.index, reason: s.data.reason, at: entry.loggedAt };
    } catch (e) {
      // reported by verifyBatch
    }
  }
  if (problems.length) return { state: "failed", size: Number(now.size), problems };
  return { state: recall ? "revoked" : "good", size: Number(now.size), recall, problems };
}

// -- the page ----------------------------------------------------------------------------------------------------

function element(doc, tag, text, className) {
  const node = doc.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

// Times as UTC (statements may carry an offset), to the minute or the day.
function minute(value) {
  const at = typeof value === "string" ? new Date(value) : null;
  return at && !Number.isNaN(at.getTime()) ? at.toISOString().slice(0, 16).replace("T", " ") : "";
}
const day = (value) => minute(value).slice(0, 10);

// What the verified events say, for the page (read from the events themselves, not from the claims).
export function certifiedView(result) {
  const name = (id) => result.names.get(id) || id;
  const view = { origin: null, inspections: [], journey: [], shipments: new Map() };
  for (const { statement: s, loggedAt } of result.events) {
    const d = s.data || {};
    if (s.type === "origin" && !view.origin) {
      view.origin = { product: d.product, producer: name(s.actor), country: d.country, region: d.region, facility: d.facility, produced: day(d.produced_at), quantity: d.quantity, unit: d.unit };
    } else if (s.type === "inspection") {
      view.inspections.push({ inspector: name(s.actor), standard: d.standard, result: d.result, at: day(d.inspected_at) });
    } else if (s.type === "shipment") {
      view.shipments.set(d.shipment_id, { id: d.shipment_id, destination: d.destination, placed: minute(d.placed_at), promised: minute(d.promised_by), delivered: null, cancelled: null });
      view.journey.push({ kind: "shipment", at: minute(d.placed_at), shipment: d.shipment_id, place: d.destination });
    } else if (s.type === "handoff") {
      view.journey.push({ kind: "handoff", at: minute(d.at), shipment: d.shipment_id, from: name(d.from), to: name(d.to), place: d.place, temperature: d.condition ? d.condition.temperature_c : null });
    } else if (s.type === "delivery") {
      const shipment = view.shipments.get(d.shipment_id);
      if (shipment && !shipment.delivered) shipment.delivered = minute(d.delivered_at);
      view.journey.push({ kind: "delivery", at: minute(d.delivered_at), shipment: d.shipment_id, from: name(s.actor), place: d.place });
    } else if (s.type === "shipment_cancel") {
      const shipment = view.shipments.get(d.shipment_id);
      if (shipment && !shipment.cancelled) shipment.cancelled = minute(d.cancelled_at);
      view.journey.push({ kind: "shipment_cancel", at: minute(d.cancelled_at), shipment: d.shipment_id });
    } else if (s.type === "recall") {
      view.journey.push({ kind: "recall", at: minute(loggedAt), place: d.reason });
    }
  }
  return view;
}

function show(box, state, text, problems) {
  box.hidden = false;
  box.className = "check " + state;
  box.textContent = text;
  if (problems && problems.length) {
    const list = box.ownerDocument.createElement("ul");
    for (const p of problems.slice(0, 20)) {
      list.appendChild(element(box.ownerDocument, "li", (p.index === null || p.index === undefined ? "" : "#" + p.index + ": ") + p.message));
    }
    box.appendChild(list);
  }
  box.setAttribute("data-state", state);
}

function fill(doc, section, result, t, lang) {
  section.replaceChildren();
  const claims = result.claims;
  const view = certifiedView(result);
  const regions = typeof Intl !== "undefined" && Intl.DisplayNames ? new Intl.DisplayNames([lang === "zh" ? "zh-Hans" : "en"], { type: "region" }) : null;
  const country = (code) => { try { return regions ? `${regions.of(code)} (${code})` : code; } catch (e) { return code; } };
  const facts = element(doc, "dl");
  const add = (label, value) => {
    if (value === undefined || value === null || value === "") return;
    facts.appendChild(element(doc, "dt", label));
    const dd = element(doc, "dd");
    dd.appendChild(element(doc, "bdi", value));
    facts.appendChild(dd);
  };
  add(t.serial, result.serial);
  add(t.issued, `${minute(claims.issued_at)} UTC · ${claims.platform || claims.issuer}`);
  add(t.product, view.origin && view.origin.product);
  add(t.sku_lot, `${claims.batch.sku} / ${claims.batch.lot}`);
  add(t.gtin, claims.batch.gtin);
  if (view.origin) {
    add(t.producer, view.origin.producer);
    add(t.country, country(view.origin.country));
    add(t.region, view.origin.region);
    add(t.facility, view.origin.facility);
    add(t.produced, view.origin.produced);
    add(t.quantity, `${view.origin.quantity} ${view.origin.unit}`);
  }
  add(t.events, `${claims.entries.length} · ${t.tree_size} ${claims.checkpoint.size}`);
  section.appendChild(element(doc, "h2", t.certified));
  section.appendChild(facts);
  section.appendChild(element(doc, "h2", t.inspections));
  if (!view.inspections.length) section.appendChild(element(doc, "p", t.no_inspections));
  for (const i of view.inspections) section.appendChild(element(doc, "div", `${i.standard} · ${i.result} · ${i.inspector} · ${i.at}`, "card"));
  section.appendChild(element(doc, "h2", `${t.journey} (UTC)`));
  const steps = element(doc, "ol", undefined, "timeline");
  steps.id = "certificate-journey";
  for (const step of view.journey.slice(0, 200)) {
    const li = element(doc, "li", undefined, step.kind);
    li.appendChild(element(doc, "div", step.at, "when"));
    let words;
    if (step.kind === "handoff") words = `${step.from} → ${step.to} · ${step.place}` + (step.temperature === null || step.temperature === undefined ? "" : ` · ${step.temperature} °C`);
    else if (step.kind === "delivery") words = `${t.delivered}${step.place ? " · " + step.place : ""} (${step.from})`;
    else if (step.kind === "shipment") words = `${t.order} ${step.shipment} → ${step.place}`;
    else if (step.kind === "shipment_cancel") words = `${t.cancelled} ${step.shipment}`;
    else words = `${t.recall}: ${step.place}`;
    li.appendChild(element(doc, "div", words));
    steps.appendChild(li);
  }
  if (!view.journey.length) section.appendChild(element(doc, "p", t.no_journey));
  else section.appendChild(steps);
  if (view.shipments.size) {
    section.appendChild(element(doc, "h2", t.deliveries));
    for (const s of view.shipments.values()) {
      const outcome = s.cancelled ? `${t.cancelled} ${s.cancelled}` : s.delivered ? `${t.delivered} ${s.delivered}` : t.not_delivered;
      section.appendChild(element(doc, "div", `${s.id} → ${s.destination} · ${t.promised} ${s.promised} · ${outcome}`, "card"));
    }
  }
  section.hidden = false;
}

export async function checkFile(doc, file) {
  const config = JSON.parse(doc.getElementById("verify-data").textContent);
  const t = config.text;
  const box = doc.getElementById("certificate-check");
  const recallBox = doc.getElementById("recall-check");
  const section = doc.getElementById("certificate-facts");
  recallBox.hidden = true;
  recallBox.setAttribute("data-state", "waiting");
  section.hidden = true;
  show(box, "checking", t.checking);
  let certificate;
  try {
    if (file.size > MOST_BYTES) throw new CertificateFileError(t.too_big);
    certificate = parseCertificate(await extractCertificate(new Uint8Array(await file.arrayBuffer())));
  } catch (e) {
    show(box, "failed", t.not_certificate + " " + e.message);
    return;
  }
  let result;
  try {
    result = await verifyCertificate(certificate, config.log_key);
  } catch (e) {
    show(box, "failed", t.failed + " " + e.message);
    return;
  }
  if (result.problems.length) {
    show(box, "failed", t.failed, result.problems);
    return;
  }
  fill(doc, section, result, t, config.lang);
  show(box, "ok", t.genuine.replace("{serial}", result.serial));
  show(recallBox, "checking", t.recall_checking);
  try {
    const fetchJson = async (path) => {
      const response = await fetch(path, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      return response.json();
    };
    const status = await recallStatus(certificate, result.claims, config.log_key, fetchJson);
    if (status.state === "revoked") {
      box.className = "check recall-stands";
      show(recallBox, "revoked", t.revoked.replace("{date}", day(status.recall.at)).replace("{reason}", status.recall.reason));
    } else if (status.state === "good") {
      show(recallBox, "ok", t.not_revoked.replace("{size}", status.size));
    } else {
      show(recallBox, "failed", t.recall_failed, status.problems);
    }
  } catch (e) {
    show(recallBox, "offline", t.recall_offline + " (" + e.message + ")");
  }
}

export function runVerifyPage(doc) {
  const input = doc.getElementById("certificate-file");
  const zone = doc.getElementById("drop-zone");
  if (!input || !zone) return;
  input.addEventListener("change", () => { if (input.files && input.files[0]) checkFile(doc, input.files[0]); });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) checkFile(doc, file);
  });
  doc.getElementById("certificate-check").setAttribute("data-state", "waiting");
}

if (typeof document !== "undefined") {
  runVerifyPage(document);
}
