// The certificate page's file reading (api/static/certificate.js) under Node: PDFs built here byte by byte, the
// way PDF writers store an attachment (literal, hex and UTF-16 names, direct and indirect lengths, Flate, incremental
// updates), and what it refuses. The certificate checks themselves run in Chromium (tests/test_certificate_page.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { extractCertificate, parseCertificate } from "../../api/static/certificate.js";

const latin1 = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const text = (bytes) => new TextDecoder().decode(bytes);

// A PDF of the given objects ([number, body] in file order); a body may hold raw stream bytes as {dict, data}.
function pdf(objects) {
  let out = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
  for (const [number, body] of objects) {
    if (typeof body === "string") {
      out += `${number} 0 obj\n${body}\nendobj\n`;
    } else {
      out += `${number} 0 obj\n${body.dict}\nstream\n${String.fromCharCode(...body.data)}\nendstream\nendobj\n`;
    }
  }
  return latin1(out + "trailer\n<< /Root 1 0 R >>\n%%EOF\n");
}

const CERT = latin1('{"format":"chainproof-certificate/v2"}');
const OTHER = latin1('{"format":"something-else"}');
const catalog = [1, "<< /Type /Catalog /Names << /EmbeddedFiles 3 0 R >> >>"];
const names = [3, "<< /Names [ (chainproof-certificate.json) 4 0 R ] >>"];
const filespec = (name, ef = 5) => [4, `<< /Type /Filespec /F ${name} /EF << /F ${ef} 0 R >> >>`];
const stream = (data, extra = "") => ({ dict: `<< /Type /EmbeddedFile /Length ${data.length}${extra} >>`, data });

test("a literal name with octal escapes, as pypdf writes it", async () => {
  const file = pdf([catalog, names, filespec("(chainproof\\055certificate\\056json)"), [5, stream(CERT)]]);
  assert.equal(text(await extractCertificate(file)), text(CERT));
});

test("a hex name, and a UTF-16 /UF beside another /F", async () => {
  const hex = Buffer.from("chainproof-certificate.json").toString("hex");
  let file = pdf([catalog, names, filespec(`<${hex}>`), [5, stream(CERT)]]);
  assert.equal(text(await extractCertificate(file)), text(CERT));
  const utf16 = "\\376\\377" + [..."chainproof-certificate.json"].map((c) => "\\000" + c).join("");
  file = pdf([catalog, names, [4, `<< /Type /Filespec /F (cert.json) /UF (${utf16}) /EF << /F 5 0 R >> >>`], [5, stream(CERT)]]);
  assert.equal(text(await extractCertificate(file)), text(CERT));
});

test("an indirect length and a Flate-compressed stream", async () => {
  const packed = new Uint8Array(deflateSync(CERT));
  const file = pdf([
    catalog, names, filespec("(chainproof-certificate.json)"),
    [5, { dict: "<< /Type /EmbeddedFile /Filter /FlateDecode /Length 6 0 R >>", data: packed }],
    [6, String(packed.length)],
  ]);
  assert.equal(text(await extractCertificate(file)), text(CERT));
});

test("an incremental update replaces the attachment: the later object is read", async () => {
  const file = pdf([catalog, names, filespec("(chainproof-certificate.json)"), [5, stream(OTHER)], [5, stream(CERT)]]);
  assert.equal(text(await extractCertificate(file)), text(CERT));
});

test("two different files under the certificate's name are refused; the same one twice is one", async () => {
  const two = pdf([
    catalog, names, filespec("(chainproof-certificate.json)"), [5, stream(CERT)],
    [7, "<< /Type /Filespec /F (chainproof-certificate.json) /EF << /F 8 0 R >> >>"], [8, stream(OTHER)],
  ]);
  await assert.rejects(extractCertificate(two), /carries 2 different files named chainproof-certificate\.json/);
  const twice = pdf([
    catalog, names, filespec("(chainproof-certificate.json)"), [5, stream(CERT)],
    [7, "<< /Type /Filespec /F (chainproof-certificate.json) /EF << /F 8 0 R >> >>"], [8, stream(CERT)],
  ]);
  assert.equal(text(await extractCertificate(twice)), text(CERT));
});

test("what it cannot read, it says", async () => {
  await assert.rejects(extractCertificate(pdf([catalog])), /carries no chainproof-certificate\.json: it is not a Chainproof certificate/);
  const otherName = pdf([catalog, names, filespec("(invoice.json)"), [5, stream(CERT)]]);
  await assert.rejects(extractCertificate(otherName), /not a Chainproof certificate/);
  const lzw = pdf([catalog, names, filespec("(chainproof-certificate.json)"), [5, stream(CERT, " /Filter /LZWDecode")]]);
  await assert.rejects(extractCertificate(lzw), /encoded with LZWDecode, which this page does not read/);
  const damaged = pdf([catalog, names, filespec("(chainproof-certificate.json)"), [5, stream(CERT, " /Filter /FlateDecode")]]);
  await assert.rejects(extractCertificate(damaged), /damaged \(it does not decompress\)/);
  const missing = pdf([catalog, names, filespec("(chainproof-certificate.json)", 9)]);
  await assert.rejects(extractCertificate(missing), /names an attached file it does not hold/);
  const packed = pdf([catalog, [2, { dict: "<< /Type /ObjStm /N 1 /First 4 /Length 3 >>", data: latin1("abc") }]]);
  await assert.rejects(extractCertificate(packed), /re-saved by another program/);
});

test("a JSON file is read as it is, and only a certificate of the current format is accepted", async () => {
  assert.equal(await extractCertificate(CERT), CERT);
  assert.throws(() => parseCertificate(latin1("\x89PNG")), /not valid JSON/);
  assert.throws(() => parseCertificate(latin1("[]")), /not a certificate file/);
  assert.throws(() => parseCertificate(latin1('{"format":"chainproof-certificate/v1"}')), /only the Chainproof CLI checks/);
  assert.throws(() => parseCertificate(CERT), /has no certificate/);
  const complete = { format: "chainproof-certificate/v2", certificate: "n", checkpoint: "c", log_key: "k", entries: [], registrations: [] };
  assert.deepEqual(parseCertificate(latin1(JSON.stringify(complete))), complete);
  assert.throws(() => parseCertificate(latin1(JSON.stringify({ ...complete, registrations: "x" }))), /has no registrations/);
});
