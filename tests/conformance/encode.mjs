// Reference encoder for edgellm's tokenizer conformance tests (tests/tokenizer/hf_bpe_test.cpp).
//
//   node encode.mjs TOKENIZER_JSON TEXT_FILE [--units=U[,U...]]
//
// Encodes TEXT_FILE with @huggingface/tokenizers (the pure-JS port of HF tokenizers) and writes
// one JSON array of token ids per unit to stdout, one unit per output line. With several
// comma-separated unit kinds (one node start for all: loading a 10 MB tokenizer.json dominates),
// each group is preceded by a line "# units=U". Units:
//   lines     each line without its "\n" (default)
//   lines-nl  each line with its "\n" (the last line keeps whatever ending the file has)
//   blocks:N  N consecutive lines joined with their "\n"s, so runs of newlines/spaces that span
//             lines go through the pre-tokenizer too
// The C++ test splits the file the same way. Special tokens are never added (edgellm's encode()
// adds no BOS/EOS); special-token strings inside the text are still matched as added tokens.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

function usage(msg) {
  process.stderr.write(`encode.mjs: ${msg}\nusage: node encode.mjs TOKENIZER_JSON TEXT_FILE [--units=lines|lines-nl|blocks:N]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length < 2) usage("need TOKENIZER_JSON and TEXT_FILE");
const [tokPath, textPath] = args;
let unitList = ["lines"];
for (const a of args.slice(2)) {
  if (a.startsWith("--units=")) unitList = a.slice("--units=".length).split(",");
  else usage(`unknown argument '${a}'`);
}

const tokJson = JSON.parse(readFileSync(tokPath, "utf8"));
const cfgPath = join(dirname(tokPath), "tokenizer_config.json");
const tokCfg = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, "utf8")) : {};
const tok = new Tokenizer(tokJson, tokCfg);

// Split keeping line terminators so "lines-nl" and "blocks" can reassemble the exact bytes.
const text = readFileSync(textPath, "utf8");
const raw = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];

function unitsOf(units) {
  if (units === "lines") return raw.map((l) => (l.endsWith("\n") ? l.slice(0, -1) : l));
  if (units === "lines-nl") return raw;
  if (units.startsWith("blocks:")) {
    const n = Number(units.slice("blocks:".length));
    if (!Number.isInteger(n) || n < 1) usage(`bad block size in '${units}'`);
    const pieces = [];
    for (let i = 0; i < raw.length; i += n) pieces.push(raw.slice(i, i + n).join(""));
    return pieces;
  }
  usage(`unknown units '${units}'`);
}

const out = [];
for (const units of unitList) {
  if (unitList.length > 1) out.push(`# units=${units}`);
  for (const p of unitsOf(units)) {
    out.push(JSON.stringify(tok.encode(p, { add_special_tokens: false }).ids));
  }
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
