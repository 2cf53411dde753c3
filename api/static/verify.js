// Chainproof in-browser verifier: checks a batch with WebCrypto (Ed25519, SHA-256), trusting nothing but the
// log key pinned in the page. The same RFC 9162 / signed-note / Wycheproof vectors drive this and ledger/ in
// Python (tests/js/verify.test.mjs). No framework, no build step; runs in browsers and in Node.
"use strict";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function b64decode(text) {
  if (typeof text !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    throw new Error("not canonical base64");
  }
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  if (b64encode(out) !== text) throw new Error("not canonical base64"); // non-zero padding bits
  return out;
}

export function b64encode(bytes) {
  let raw = "";
  for (const b of bytes) raw += String.fromCharCode(b);
  return btoa(raw);
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}
export const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

// RFC 9162 2.1.3.2, step by step (BigInt: indices may exceed 2^53 in hostile input).
export async function verifyInclusion(index, size, leaf, proof, root) {
  let fn = BigInt(index), sn = BigInt(size) - 1n;
  if (BigInt(index) >= BigInt(size) || BigInt(index) < 0n) throw new Error("index outside the tree");
  if (leaf.length !== 32 || root.length !== 32) throw new Error("hashes must be 32 bytes");
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32) throw new Error("proof hashes must be 32 bytes");
    if (sn === 0n) throw new Error("inclusion proof too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) while (fn !== 0n && (fn & 1n) === 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("inclusion proof too short");
  if (!equal(r, root)) throw new Error("inclusion proof leads to another root");
}

// RFC 9162 2.1.4.2 (with the same edge rules as ledger/merkle.py).
export async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  let m = BigInt(first), n = BigInt(second);
  if (n < m) throw new Error("tree size went backwards");
  if (m === 0n) throw new Error("a consistency proof from an empty tree proves nothing");
  if (m === n) {
    if (proof.length) throw new Error("sizes are equal, so the proof must be empty");
    if (!equal(firstRoot, secondRoot)) throw new Error("roots differ");
    return;
  }
  if (!proof.length) throw new Error("empty consistency proof");
  if (firstRoot.length !== 32 || secondRoot.length !== 32) throw new Error("roots must be 32 bytes");
  for (const p of proof) if (p.length !== 32) throw new Error("proof hashes must be 32 bytes");
  const path = (m & (m - 1n)) === 0n ? [firstRoot, ...proof] : [...proof];
  let fn = m - 1n, sn = n - 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new Error("consistency proof too long");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) while (fn !== 0n && (fn & 1n) === 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("consistency proof too short");
  if (!equal(fr, firstRoot) || !equal(sr, secondRoot)) throw new Error("consistency proof does not match the roots");
}

export async function ed25519Verify(publicKey, signature, message) {
  if (signature.length !== 64) return false;
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

export async function ed25519Supported() {
  try {
    await crypto.subtle.importKey("raw", new Uint8Array(32).fill(1), { name: "Ed25519" }, false, ["verify"]);
    return true;
  } catch (e) {
    return false;
  }
}

// C2SP signed-note verifier keys and notes.
export async function parseVerifierKey(text) {
  const m = /^([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text.trim());
  if (!m) throw new Error("not a note verifier key");
  const raw = b64decode(m[3]);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 verifier key");
  const key = raw.slice(1);
  const digest = await sha256(concat(enc.encode(m[1] + "\n"), Uint8Array.of(1), key));
  const hash = Array.from(digest.slice(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
  if (hash !== m[2]) throw new Error("verifier key hash does not match its key");
  return { name: m[1], hash: digest.slice(0, 4), key };
}

export async function openNote(note, verifier) {
  if (!note.endsWith("\n")) throw new Error("note must end with a newline");
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) throw new Error("note contains control characters");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new Error("note has no signatures");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split("\n");
  let verified = 0;
  for (const line of lines) {
    const m = /^\u2014 ([^\s+]+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Error("malformed signature line");
    const raw = b64decode(m[2]);
    if (raw.length < 5) throw new Error("signature too short");
    if (m[1] !== verifier.name || !equal(raw.slice(0, 4), verifier.hash)) continue; // unknown key: ignored
    if (!(await ed25519Verify(verifier.key, raw.slice(4), enc.encode(text)))) {
      throw new Error("the log's signature on the checkpoint does not verify");
    }
    verified++;
  }
  if (!verified) throw new Error("the checkpoint is not signed by the log key");
  return text;
}

export function parseCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.length < 4 || lines[lines.length - 1] !== "") throw new Error("malformed checkpoint");
  if (!/^(0|[1-9][0-9]{0,19})$/.test(lines[1])) throw new Error("malformed checkpoint size");
  const root = b64decode(lines[2]);
  if (root.length !== 32) throw new Error("malformed checkpoint root");
  return { origin: lines[0], size: BigInt(lines[1]), root };
}

const STATEMENT_CONTEXT = enc.encode("chainproof/statement/v1\n");
const LEAF_PREFIX = /^\{"index":(0|[1-9][0-9]{0,18}),"logged_at":"([0-9A-Za-z:.+-]{1,64})","prev":(null|"[A-Za-z0-9+/]{43}="),"signature":"([A-Za-z0-9+/]{86}==)","statement":/;

// An entry's leaf: its fields, and the exact statement bytes the signature covers (see docs/adr/0001).
export function parseLeaf(leaf) {
  const text = dec.decode(leaf);
  const m = LEAF_PREFIX.exec(text);
  if (!m || !text.endsWith("}")) throw new Error("leaf is not a canonical entry");
  const prefixBytes = enc.encode(m[0]).length;
  const statementBytes = leaf.slice(prefixBytes, leaf.length - 1);
  const statement = JSON.parse(dec.decode(statementBytes));
  return {
    index: Number(m[1]),
    loggedAt: m[2],
    prev: m[3] === "null" ? null : b64decode(m[3].slice(1, -1)),
    signature: b64decode(m[4]),
    statementBytes,
    statement,
  };
}

async function keyId(raw) {
  return Array.from((await sha256(raw)).slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Each record ({index, hash, entry, proof}, in log order) is in the checkpoint's tree: by its own inclusion
// proof, or because the next record links to it by hash (`prev`) and is itself in the tree (ADR 0006).
async function anchorProblems(records, checkpoint, problems) {
  let vouched = null;
  for (let i = records.length - 1; i >= 0; i--) {
    const record = records[i];
    if (record.proof) {
      if (!checkpoint) { vouched = null; continue; }
      try {
        await verifyInclusion(record.index, checkpoint.size, record.hash, record.proof.map(b64decode), checkpoint.root);
      } catch (e) {
        problems.push({ index: record.index, message: "not in the signed log: " + e.message });
        vouched = null;
        continue;
      }
    } else if (!(vouched && equal(vouched, record.hash))) {
      problems.push({ index: record.index, message: "not shown to be in the signed log: no proof, and no later entry links to it" });
      vouched = null;
      continue;
    }
    vouched = record.entry ? record.entry.prev : null;
  }
}

// Who may sign, derived from registration entries (ADR 0001 §9, ADR 0002): each actor's chain from its first
// registration, its last entry proven into the checkpoint (the links vouch for the rest); each registration signed
// by the log key, an admin, or (its own keys) the actor itself, with a key bound before it. Returns a function
// (statement, index, loggedAt) -> the public key that must have signed it, throwing if the log binds none.
async function deriveSigners(items, logKey, checkpoint, problems) {
  const logKeyId = await keyId(logKey.key);
  const keys = new Map();   // key id -> {actor, publicKey, addedAt, revokedAt, validFrom, revokedTime, migrated}
  const roles = new Map();  // actor id -> role
  const chains = new Map(); // actor concerned -> records of its registrations, in log order
  let lastIndex = -1;
  const records = [];
  for (const item of items || []) {
    if (!Number.isSafeInteger(item.index) || item.index <= lastIndex) {
      problems.push({ index: item.index, message: "registrations are not in log order" });
    }
    lastIndex = item.index;
    const leaf = b64decode(item.leaf);
    const record = { index: item.index, hash: await leafHash(leaf), entry: null, proof: item.proof };
    try {
      record.entry = parseLeaf(leaf);
    } catch (e) {
      problems.push({ index: item.index, message: "registration cannot be read: " + e.message });
      continue;
    }
    const s = record.entry.statement;
    if (record.entry.index !== item.index || s.sku !== "_identity" || typeof s.lot !== "string") {
      problems.push({ index: item.index, message: "not a registration at this index" });
      continue;
    }
    const chain = chains.get(s.lot) || [];
    const previous = chain.length ? chain[chain.length - 1].hash : null;
    if (!(previous === null ? record.entry.prev === null : record.entry.prev !== null && equal(record.entry.prev, previous))) {
      problems.push({ index: item.index, message: "registration does not link to the actor's previous one" });
    }
    chain.push(record);
    chains.set(s.lot, chain);
    records.push(record);
  }
  for (const chain of chains.values()) await anchorProblems(chain, checkpoint, problems);
  const bound = (keyIdText, actor, index) => {
    const k = keys.get(keyIdText);
    if (!k || k.actor !== actor || !(k.addedAt < index) || (k.revokedAt !== undefined && index >= k.revokedAt)) {
      throw new Error("signed with a key the log does not bind to " + actor + " at this index");
    }
    return k.publicKey;
  };
  for (const record of records) {
    const { statement: s, signature, statementBytes } = record.entry;
    const data = s.data || {};
    let publicKey;
    try {
      if (s.actor === "_log") {
        if (s.key_id !== logKeyId) throw new Error("signed for the log with another key than the log's");
        publicKey = logKey.key;
      } else {
        publicKey = bound(s.key_id, s.actor, record.index);
        const own = (s.type === "key_add" || s.type === "key_revoke") && data.actor === s.actor;
        if (roles.get(s.actor) !== "admin" && !own) throw new Error("registered by " + s.actor + ", who may not");
      }
      if (!(await ed25519Verify(publicKey, signature, concat(STATEMENT_CONTEXT, statementBytes)))) {
        throw new Error("registration signature does not verify");
      }
    } catch (e) {
      problems.push({ index: record.index, message: e.message });
      continue;  // a registration that does not hold binds nobody
    }
    if (s.type === "actor" && data.id === s.lot) {
      roles.set(data.id, data.role);
    } else if (s.type === "key_add" && data.actor === s.lot && !keys.has(data.key_id)) {
      const raw = b64decode(data.public_key);
      if (raw.length === 32 && (await keyId(raw)) === data.key_id) {
        keys.set(data.key_id, {
          actor: data.actor, publicKey: raw, addedAt: record.index, revokedAt: undefined,
          validFrom: data.valid_from ? Date.parse(data.valid_from) : null, revokedTime: null,
        });
      }
    } else if (s.type === "key_revoke" && keys.has(data.key_id) && keys.get(data.key_id).revokedAt === undefined) {
      const k = keys.get(data.key_id);
      k.revokedAt = record.index;
      k.revokedTime = Date.parse(data.revoked_at || record.entry.loggedAt);
    }
  }
  return (statement, index, loggedAt) => {
    const k = keys.get(statement.key_id);
    // a key migrated from an old directory signed the entries logged before it by its old times (ADR 0001 §9)
    if (k && k.validFrom !== null && index < k.addedAt && k.actor === statement.actor) {
      const at = Date.parse(loggedAt);
      if (at >= k.validFrom && (k.revokedTime === null || at < k.revokedTime)) return k.publicKey;
    }
    return bound(statement.key_id, statement.actor, index);
  };
}

// Verify a batch as the page ships it (ADRs 0002, 0006): {log_key, checkpoint, entries: [{index, leaf, proof?}] in
// log order, registrations: [{index, leaf, proof?}] (its signers', see deriveSigners), batch: {sku, lot, events,
// window: [first, last]}}.
// Every entry shown must be signed by a key the log binds to its actor, belong to the batch, and be in the signed log:
// by its own inclusion proof, or because the next entry shown links to it by hash and is itself in the log. The
// entries whose index lies in `window` (the events the page lists) must form an unbroken chain, so none of them
// can be left out; the origin links to nothing. Without `batch` (older pages), every entry is in the window.
// Returns every problem found (an empty list means all holds).
export async function verifyBatch(data, label = null) {
  const problems = [];
  const key = await parseVerifierKey(data.log_key);
  if (label && label.k !== b64url(await sha256(enc.encode(data.log_key.trim())))) {
    problems.push({ index: null, message: "the label names another log key than the one this server uses" });
  }
  let checkpoint = null;
  try {
    checkpoint = parseCheckpoint(await openNote(data.checkpoint, key));
    if (checkpoint.origin !== key.name) throw new Error("checkpoint is for another log");
  } catch (e) {
    problems.push({ index: null, message: "checkpoint: " + e.message });
  }
  if (!data.entries.length) problems.push({ index: null, message: "no entries to verify" });
  const signerKey = await deriveSigners(data.registrations, key, checkpoint, problems);
  const batch = data.batch || null;
  const [first, last] = batch && Array.isArray(batch.window) ? batch.window : [-Infinity, Infinity];
  const inWindow = (index) => index >= first && index <= last;
  const shown = [];
  let lastIndex = -1;
  for (const item of data.entries) {
    const where = item.index;
    if (!Number.isSafeInteger(where) || where <= lastIndex) {
      problems.push({ index: where, message: "entries are not in log order" });
    }
    lastIndex = where;
    const leaf = b64decode(item.leaf);
    const record = { index: where, hash: await leafHash(leaf), entry: null, proof: item.proof };
    shown.push(record);
    try {
      record.entry = parseLeaf(leaf);
    } catch (e) {
      problems.push({ index: where, message: "entry cannot be read: " + e.message });
      continue;
    }
    const entry = record.entry;
    if (entry.index !== item.index) problems.push({ index: where, message: "entry says it is index " + entry.index });
    if (batch && (entry.statement.sku !== batch.sku || entry.statement.lot !== batch.lot)) {
      problems.push({ index: where, message: "entry belongs to another batch" });
    }
    if ((entry.prev === null) !== (entry.statement.type === "origin")) {
      problems.push({ index: where, message: "only a batch's origin, its first entry, links to nothing" });
    }
    let signer = null;
    try {
      signer = signerKey(entry.statement, entry.index, entry.loggedAt);
    } catch (e) {
      problems.push({ index: where, message: e.message });
    }
    if (signer && !(await ed25519Verify(signer, entry.signature, concat(STATEMENT_CONTEXT, entry.statementBytes)))) {
      problems.push({ index: where, message: "signature does not verify" });
    }
  }
  // The listed events: an unbroken chain, starting from the origin if the window reaches the batch's start.
  let previous;
  for (const record of shown) {
    if (!inWindow(record.index)) continue;
    if (record.entry) {
      const linked = previous === undefined
        ? first === -Infinity ? record.entry.prev === null : true
        : previous !== null && record.entry.prev !== null && equal(record.entry.prev, previous);
      if (!linked) problems.push({ index: record.index, message: "does not link to the batch's previous entry" });
    }
    previous = record.hash;
  }
  // In the log: each entry by its own proof, or by the hash link from a later entry that is in the log.
  await anchorProblems(shown, checkpoint, problems);
  if (label) {  // the origin entry the label names: shown, and (above) proven into the signed log
    const origin = shown.find((r) => r.entry && r.entry.statement.type === "origin");
    if (!origin) {
      problems.push({ index: null, message: "the label's origin entry is not among the entries shown" });
    } else if (b64url(origin.hash) !== label.o) {
      problems.push({ index: origin.index, message: "the label names another origin entry than this server shows" });
    }
  }
  problems.sort((a, b) => (a.index ?? -1) - (b.index ?? -1));
  return problems;
}

// C2SP tlog-tiles: inclusion proofs built from the log's tiles (ledger/tiles.py), which every page shares, so
// browsers and CDNs cache them. `fetchTile(path)` returns a tile's bytes.
export function tilePath(level, index, width) {
  const groups = [];
  let n = index;
  do { groups.push(String(n % 1000).padStart(3, "0")); n = Math.floor(n / 1000); } while (n > 0);
  const digits = groups.slice(1).reverse().map((g) => "x" + g).concat([groups[0]]).join("/");
  return `tile/${level}/${digits}` + (width === 256 ? "" : `.p/${width}`);
}

export class TileProofs {
  constructor(fetchTile, size) {
    this.fetchTile = fetchTile;
    this.size = size;
    this.tiles = new Map();
  }

  async tileHash(level, index) {
    const tile = Math.floor(index / 256);
    const key = `${level}/${tile}`;
    if (!this.tiles.has(key)) {
      const available = Math.floor(this.size / 256 ** level);
      const width = Math.min(256, available - tile * 256);
      if (width <= 0) throw new Error(`a tree of size ${this.size} has no tile ${tile} at level ${level}`);
      const bytes = await this.fetchTile(tilePath(level, tile, width));
      if (bytes.length !== width * 32) throw new Error(`tile ${tilePath(level, tile, width)} is not ${width} hashes`);
      this.tiles.set(key, bytes);
    }
    const offset = (index % 256) * 32;
    return this.tiles.get(key).slice(offset, offset + 32);
  }

  // The hash of the perfect subtree of height `height` at `index`, hashed up from its tile level.
  async node(height, index) {
    const level = Math.floor(height / 8), rest = height % 8;
    let hashes = [];
    for (let i = 0; i < 1 << rest; i++) hashes.push(await this.tileHash(level, index * (1 << rest) + i));
    while (hashes.length > 1) {
      const up = [];
      for (let i = 0; i < hashes.length; i += 2) up.push(await nodeHash(hashes[i], hashes[i + 1]));
      hashes = up;
    }
    return hashes[0];
  }

  // The RFC 9162 hash of leaves [start, end): its perfect subtrees, folded right to left.
  async rangeHash(start, end) {
    const keys = [];
    let offset = start;
    const size = end - start;
    for (let level = Math.floor(Math.log2(size)); level >= 0; level--) {
      if (Math.floor(size / 2 ** level) % 2 === 1) { keys.push([level, offset / 2 ** level]); offset += 2 ** level; }
    }
    const hashes = [];
    for (const [level, index] of keys) hashes.push(await this.node(level, index));
    let result = hashes[hashes.length - 1];
    for (let i = hashes.length - 2; i >= 0; i--) result = await nodeHash(hashes[i], result);
    return result;
  }

  // PATH(index, D[size]) (RFC 9162 2.1.3.1), bottom-up, as base64 hashes (the form pages carry proofs in).
  async inclusionProof(index) {
    const ranges = [];
    let start = 0, end = this.size;
    while (end - start > 1) {
      let k = 1;
      while (k * 2 < end - start) k *= 2;
      if (index < start + k) { ranges.push([start + k, end]); end = start + k; } else { ranges.push([start, start + k]); start += k; }
    }
    ranges.reverse();
    const proof = [];
    for (const [a, b] of ranges) proof.push(b64encode(await this.rangeHash(a, b)));
    return proof;
  }
}

// Give every listed entry that needs an inclusion proof and carries none (a page that reads its proofs from
// tiles: `data.tiles`, the tiles' URL prefix) its proof, built from the tiles of the page's checkpoint.
export async function proofsFromTiles(data, fetchTile) {
  if (!data.tiles) return;
  const size = Number(parseCheckpoint(data.checkpoint.slice(0, data.checkpoint.lastIndexOf("\n\n") + 1)).size);
  const tiles = new TileProofs(fetchTile, size);
  for (const list of [data.entries || [], data.registrations || []]) {
    for (const item of list) {
      if (item.needs_proof && !item.proof) item.proof = await tiles.inclusionProof(item.index);
    }
  }
}

// C2SP tlog-cosignature v1: the witnesses (vkeys of type 0x04) whose timestamped cosignature on the checkpoint
// verifies. Returns [{name, timestamp}] (POSIX seconds); a line by a listed witness that does not verify is skipped.
export async function verifyCosignatures(note, witnesses) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !Array.isArray(witnesses) || !witnesses.length) return [];
  const body = note.slice(0, split + 1);
  const keys = [];
  for (const w of witnesses) {
    const m = /^([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(String(w.vkey || "").trim());
    if (!m) continue;
    const raw = b64decode(m[3]);
    if (raw.length !== 33 || raw[0] !== 4) continue;
    const digest = await sha256(concat(enc.encode(m[1] + "\n"), Uint8Array.of(4), raw.slice(1)));
    if (!equal(digest.slice(0, 4), Uint8Array.from(m[2].match(/../g).map((h) => parseInt(h, 16))))) continue;
    keys.push({ label: w.name, name: m[1], id: digest.slice(0, 4), key: raw.slice(1) });
  }
  const found = [];
  for (const line of note.slice(split + 2).split("\n")) {
    const m = /^\u2014 ([^\s+]+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) continue;
    let raw;
    try { raw = b64decode(m[2]); } catch (e) { continue; }
    if (raw.length !== 4 + 8 + 64) continue;
    const witness = keys.find((k) => k.name === m[1] && equal(k.id, raw.slice(0, 4)));
    if (!witness || found.some((f) => f.name === witness.label)) continue;
    const timestamp = new DataView(raw.buffer, raw.byteOffset + 4, 8).getBigUint64(0);
    const message = enc.encode(`cosignature/v1\ntime ${timestamp}\n${body}`);
    if (await ed25519Verify(witness.key, raw.slice(12), message)) found.push({ name: witness.label, timestamp: Number(timestamp) });
  }
  return found;
}

// On a product page of a witnessed log: how many of the log's witnesses vouch for the checkpoint, and how recently.
export async function showWitnesses(doc, data, t, nowSeconds) {
  const box = doc.getElementById("witness-check");
  if (!box || !Array.isArray(data.witnesses) || !data.witnesses.length) return;
  const found = await verifyCosignatures(data.checkpoint, data.witnesses);
  box.hidden = false;
  const newest = found.reduce((n, f) => Math.max(n, f.timestamp), 0);
  const minutes = Math.max(0, Math.floor((nowSeconds - newest) / 60));
  let state;
  if (!found.length) {
    state = "none";
    box.textContent = t.witness_none;
  } else if (nowSeconds - newest > Number(data.witness_warn_s ?? 3600)) {
    state = "stale";
    box.textContent = t.witness_stale.replace("{minutes}", minutes);
  } else {
    state = "ok";
    box.textContent = t.witness_ok.replace("{n}", found.length).replace("{m}", data.witnesses.length).replace("{minutes}", minutes);
  }
  box.className = "check " + (state === "ok" ? "ok" : "witness-warning");
  box.setAttribute("data-state", state);
  box.setAttribute("data-witnesses", String(found.length));
}

export function b64url(bytes) {
  return b64encode(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

// The label fragment a printed QR code carries (ledger/label.py): {k, o}, or null.
export function parseLabel(fragment) {
  const m = /^#?k=([A-Za-z0-9_-]{43})&o=([A-Za-z0-9_-]{43})$/.exec(fragment || "");
  return m ? { k: m[1], o: m[2] } : null;
}

// On a product page: run, and show the result in #browser-check.
export async function runOnPage(doc) {
  const box = doc.getElementById("browser-check");
  const source = doc.getElementById("ledger-data");
  if (!box || !source) return;
  const t = JSON.parse(doc.getElementById("i18n-data").textContent);
  if (!(await ed25519Supported())) {
    box.className = "check unsupported";
    box.textContent = t.unsupported;
    box.setAttribute("data-state", "unsupported");
    return;
  }
  try {
    const label = parseLabel(doc.defaultView ? doc.defaultView.location.hash : "");
    const data = JSON.parse(source.textContent);
    await showWitnesses(doc, data, t, Math.floor(Date.now() / 1000));
    await proofsFromTiles(data, async (path) => {
      const response = await fetch(`${data.tiles.replace(/\/$/, "")}/${path}`);
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    });
    const problems = await verifyBatch(data, label);
    const verdict = doc.getElementById("verdict");
    const recalled = verdict !== null && verdict.getAttribute("data-verdict") === "recalled";
    if (!problems.length) {
      // on a recalled batch the records checking out confirms the recall: red, never an all-clear
      box.className = recalled ? "check recall-stands" : "check ok";
      box.textContent = (recalled ? t.recall_stands : t.ok) + " " + (label ? t.label_ok : t.no_label);
      box.setAttribute("data-label", label ? "matches" : "absent");
      box.setAttribute("data-state", "ok");
      return;
    } else {
      box.className = "check failed";
      box.textContent = t.failed;
      const list = doc.createElement("ul");
      for (const p of problems) {
        const li = doc.createElement("li");
        li.textContent = (p.index === null ? "" : "#" + p.index + ": ") + p.message;
        list.appendChild(li);
      }
      box.appendChild(list);
    }
  } catch (e) {
    box.className = "check failed";
    box.textContent = t.failed + " " + e.message;
  }
  box.setAttribute("data-state", box.className.replace("check ", ""));
}

if (typeof document !== "undefined") {
  runOnPage(document);
}
