// The in-browser verifier against the same vectors as ledger/ (run by tests/test_js_verifier.py with Node).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  b64decode, ed25519Verify, openNote, parseVerifierKey, verifyConsistency, verifyInclusion, verifyBatch,
} from "../../api/static/verify.js";

const vectors = new URL("../vectors/", import.meta.url).pathname;

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith(".json") ? [path] : [];
  });
}

const bytes = (s) => (s ? Uint8Array.from(Buffer.from(s, "base64")) : new Uint8Array(0));

test("RFC 9162 vectors", async () => {
  const files = walk(join(vectors, "rfc9162"));
  assert.equal(files.length, 196);
  for (const file of files) {
    const c = JSON.parse(readFileSync(file, "utf8"));
    const proof = (c.proof || []).map(bytes);
    let failed = false;
    try {
      if ("leafIdx" in c) {
        await verifyInclusion(BigInt(c.leafIdx), BigInt(c.treeSize), bytes(c.leafHash), proof, bytes(c.root));
      } else {
        await verifyConsistency(BigInt(c.size1), BigInt(c.size2), bytes(c.root1), bytes(c.root2), proof);
      }
    } catch (e) {
      failed = true;
    }
    assert.equal(failed, c.wantErr, file);
  }
});

test("signed-note vectors", async () => {
  const { vectors: notes } = JSON.parse(readFileSync(join(vectors, "signed-note.json"), "utf8"));
  for (const v of notes) {
    const key = await parseVerifierKey(v.verifier_key);
    assert.ok((await openNote(v.note, key)).length > 0);
    await assert.rejects(openNote(v.note.replace("\n", " \n"), key));
  }
});

test("Wycheproof Ed25519", async () => {
  const data = JSON.parse(readFileSync(join(vectors, "wycheproof", "ed25519_test.json"), "utf8"));
  let count = 0;
  for (const group of data.testGroups) {
    const pk = Uint8Array.from(Buffer.from(group.publicKey.pk, "hex"));
    for (const t of group.tests) {
      let ok;
      try {
        ok = await ed25519Verify(pk, Uint8Array.from(Buffer.from(t.sig, "hex")), Uint8Array.from(Buffer.from(t.msg, "hex")));
      } catch (e) {
        ok = false;
      }
      assert.equal(ok, t.result === "valid", `tc${t.tcId} ${t.comment}`);
      count++;
    }
  }
  assert.equal(count, 151);
});

test("a batch exported by the Python side", async () => {
  const path = process.env.CHAINPROOF_JS_BATCH;
  if (!path) return;
  const cases = JSON.parse(readFileSync(path, "utf8"));
  for (const [name, expected] of Object.entries(cases.expect)) {
    const problems = await verifyBatch(cases.batches[name], (cases.labels || {})[name] || null);
    assert.deepEqual(problems.map((p) => p.index), expected, name + ": " + JSON.stringify(problems));
  }
});

test("base64 is strict", () => {
  assert.throws(() => b64decode("AA AA"));
  assert.throws(() => b64decode("AAB"));
  assert.throws(() => b64decode("AAB="));
});
