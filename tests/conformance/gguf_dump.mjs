// Independent GGUF reader for edgellm's conformance test (tests/io/gguf_types_test.cpp).
//
//   node gguf_dump.mjs FILE.gguf
//
// Parses FILE.gguf with @huggingface/gguf (pinned in package-lock.json; written independently of
// edgellm and of llama.cpp) and prints one JSON object: every metadata key with its GGUF value
// type (and element type for arrays), its value (arrays: length and first element), and every
// tensor's name, dims (ne order), ggml type and offset. BigInts become decimal strings.
import { gguf } from "@huggingface/gguf";
import { resolve } from "node:path";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: node gguf_dump.mjs FILE.gguf\n");
  process.exit(2);
}
const plain = (v) => (typeof v === "bigint" ? v.toString() : v);
const { typedMetadata, tensorInfos } = await gguf(resolve(file), {
  typedMetadata: true,
  allowLocalFile: true,
});
const kv = {};
for (const [key, e] of Object.entries(typedMetadata)) {
  const out = { type: e.type };
  if (e.subType !== undefined) out.subType = e.subType;
  if (Array.isArray(e.value)) {
    out.length = e.value.length;
    if (e.value.length) out.first = plain(e.value[0]);
  } else {
    out.value = plain(e.value);
  }
  kv[key] = out;
}
const tensors = tensorInfos.map((t) => ({
  name: t.name,
  ne: t.shape.map(plain),
  dtype: t.dtype,
  offset: plain(t.offset),
}));
process.stdout.write(JSON.stringify({ kv, tensors }) + "\n");
