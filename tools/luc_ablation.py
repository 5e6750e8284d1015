#!/usr/bin/env python3
"""Table-2-shaped ablation of layer-wise unified compression (docs/compression.md).

For each model: perplexity (standard protocol, ctx 512, the first --eval-tokens tokens of
TinyStories val) of dense, quant-only 8-bit (GPTQ), SparseGPT-only 50%, and uniform / random /
luc / budget at B = 3, 4, 5 with P = 0.5 and 0.3. Every compressed model: GPTQ + SparseGPT,
calibrated layer by layer on the same calibration windows (16 × 256 tokens of TinyStories train,
disjoint from the evaluation text); luc/random/budget read one sens.json profiled on those windows;
budget's target is luc's own size; luc-rel / budget-rel: the same on sensitivities divided by
each layer's dense output mean square; budget-rel@u: budget-rel at the uniform row's exact size. Prints a markdown table; true bits/weight count every stored
byte of the decoder linears, file = model.safetensors bytes.

  python3 tools/luc_ablation.py [--cli build/release/edgellm] [--data ../shared/data] [--out DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import time


def run(cmd):
    for attempt in range(2):  # one retry: a shared machine can fail a process start
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode == 0:
            break
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default="build/release/edgellm")
    ap.add_argument("--data", default=os.environ.get("EDGELLM_DATA", "../shared/data"))
    ap.add_argument("--out", default="runs/luc_ablation")
    ap.add_argument("--eval-tokens", type=int, default=4096)
    ap.add_argument("--calib-windows", type=int, default=16)
    ap.add_argument("--calib-len", type=int, default=256)
    ap.add_argument("--models", default="stories260K,edgellm-tiny")
    ap.add_argument("--policies", default="uniform,random,luc,budget,luc-rel,budget-rel,budget-rel@u",
                    help="-rel: the same policy on relative sensitivities (--relative-sensitivity)")
    ap.add_argument("--skip-base", action="store_true", help="no dense / 8-bit / SparseGPT rows")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse compressed directories already under --out (no recompression)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    d = a.data
    val = f"{d}/text/tinystories/tinystories_val.txt"
    calib = f"{a.out}/calib.txt"  # 300 kB of TinyStories train: disjoint from val
    with open(f"{d}/text/tinystories/tinystories_v1_train_part01.txt", "rb") as f:
        open(calib, "wb").write(f.read(300_000))
    models = {
        "stories260K": (f"{d}/models/stories260K/stories260K.bin",
                        f"{d}/models/stories260K/tok512.bin"),
        "edgellm-tiny": ("models/edgellm-tiny", ""),
    }
    cal = ["--calib", calib, "--calib-windows", str(a.calib_windows), "--calib-len",
           str(a.calib_len)]
    rows = []
    for name in a.models.split(","):
        model, tok = models[name]
        tokarg = ["--tokenizer", tok] if tok else []
        t0 = time.time()

        def ppl(path, extra_tok=True):
            j = json.loads(run([a.cli, "ppl", "--json", "--model", path, "--text", val,
                                "--max-tokens", str(a.eval_tokens)] +
                               (tokarg if extra_tok else [])))
            return j["ppl"]

        sens = f"{a.out}/{name}.sens.json"
        if not (a.reuse and os.path.exists(sens)):
            run([a.cli, "profile", "--model", model, *tokarg, *cal, "--bits", "3,4,5,6,8",
                 "--sparsity", "0.1,0.3,0.5,0.7", "--pruner", "sparsegpt", "--no-per-linear",
                 "--out", sens, "--plot", f"{a.out}/{name}.sens.svg"])
        if not a.skip_base:
            rows.append((name, "dense", "-", "-", 32.0 if model.endswith(".bin") else 16.0,
                         os.path.getsize(model if model.endswith(".bin")
                                         else f"{model}/model.safetensors"), ppl(model)))

        def comp(label, policy, B, P):
            # "@u": budget at the uniform row's exact size (equal-size comparison).
            at_uniform = policy.endswith("@u")
            policy = policy.removesuffix("@u")
            rel = ["--relative-sensitivity"] if policy.endswith("-rel") else []
            policy = policy.removesuffix("-rel")
            out = f"{a.out}/{name}-{label.replace('@', '-at-')}-b{B}-p{P}"
            target = []
            if at_uniform:
                u = [r for r in rows if r[:4] == (name, "uniform", B, P)]
                if not u:
                    comp("uniform", "uniform", B, P)
                    u = rows[-1:]
                target = ["--target-bpw", repr(u[0][4])]
            if not (a.reuse and os.path.exists(f"{out}/model.safetensors")):
                run([a.cli, "compress", "--json", "--model", model, *tokarg, *cal, "--quantizer",
                     "gptq", "--pruner", "sparsegpt", "--bits", str(B), "--sparsity", str(P),
                     "--policy", policy, *rel, *target, "--sensitivity", sens, "--out", out])
            bpw = json.loads(run([a.cli, "info", "--json", "--model", out]))["storage"][
                "linear_bits_per_weight"]
            rows.append((name, label, B, P, bpw, os.path.getsize(f"{out}/model.safetensors"),
                         ppl(out, False)))
            print(rows[-1], file=sys.stderr, flush=True)

        if not a.skip_base:
            comp("quant-only", "uniform", 8, 0)
            comp("sparsegpt-only", "uniform", 16, 0.5)
        for P in (0.5, 0.3):
            for B in (3, 4, 5):
                for pol in a.policies.split(","):
                    comp(pol, pol, B, P)
        print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
    print("| model | method | B | P | bits/w (linears) | file bytes | ppl |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} | {r[5]:,} | {r[6]:.3f} |")


if __name__ == "__main__":
    main()
