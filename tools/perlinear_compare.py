#!/usr/bin/env python3
"""Per-layer vs per-linear budget vs luc at equal true bits per weight (docs/compression.md).

One per-linear sensitivity profile (RTN 3,4,5,6,8 bits, SparseGPT 0.1..0.7) on calibration windows
of TinyStories train (disjoint from the evaluation text); every compressed model GPTQ +
SparseGPT, calibrated layer by layer on the same windows. luc rows fix B (and P); the two budget
rows of a group get luc's measured bits/weight as --target-bpw (so they are never larger), or a
fixed target. "no sparsity" groups run with --sparsity 0 --p-max 0 (budget may only choose bits);
the others let budget choose any profiled sparsity up to 0.7 (luc: mean P = 0.5). Perplexity:
standard protocol (one BOS, ctx 512), the first --eval-tokens tokens of TinyStories val.
Σ sens = the allocation's summed per-linear predicted sensitivity (what the per-linear budget
minimises), from the compression record.

  python3 tools/perlinear_compare.py [--cli build/release/edgellm] [--data ../shared/data]
      [--out runs/perlinear] [--reuse]
"""
import argparse
import json
import os
import subprocess
import sys


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default="build/release/edgellm")
    ap.add_argument("--data", default=os.environ.get("EDGELLM_DATA", "../shared/data"))
    ap.add_argument("--model", default="models/edgellm-tiny")
    ap.add_argument("--out", default="runs/perlinear")
    ap.add_argument("--eval-tokens", type=int, default=4096)
    ap.add_argument("--reuse", action="store_true", help="reuse directories already under --out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    val = f"{a.data}/text/tinystories/tinystories_val.txt"
    calib = f"{a.out}/calib.txt"  # 300 kB of TinyStories train: disjoint from val
    with open(f"{a.data}/text/tinystories/tinystories_v1_train_part01.txt", "rb") as f:
        open(calib, "wb").write(f.read(300_000))
    cal = ["--calib", calib, "--calib-windows", "16", "--calib-len", "256"]
    sens = f"{a.out}/sens.json"
    if not (a.reuse and os.path.exists(sens)):
        run([a.cli, "profile", "--model", a.model, *cal, "--bits", "3,4,5,6,8", "--sparsity",
             "0.1,0.3,0.5,0.7", "--pruner", "sparsegpt", "--out", sens])

    def ppl(path):
        return json.loads(run([a.cli, "ppl", "--json", "--model", path, "--text", val,
                               "--max-tokens", str(a.eval_tokens)]))["ppl"]

    rows = [("dense", "-", "-", 16.0, float("nan"), ppl(a.model))]

    def comp(label, B, P, extra):
        out = f"{a.out}/{label}"
        if not (a.reuse and os.path.exists(f"{out}/model.safetensors")):
            run([a.cli, "compress", "--json", "--model", a.model, *cal, "--quantizer", "gptq",
                 "--pruner", "sparsegpt", "--bits", str(B), "--sparsity", str(P),
                 "--sensitivity", sens, *extra, "--out", out])
        info = json.loads(run([a.cli, "info", "--json", "--model", out]))
        bpw = info["storage"]["linear_bits_per_weight"]
        alloc = info["compression"]["policy"]["allocation"]
        s = sum(alloc.get("predicted_linear_sensitivity") or [float("nan")])
        rows.append((label, B, P, bpw, s, ppl(out)))
        print(rows[-1], file=sys.stderr, flush=True)
        return bpw

    for sparse, groups in ((False, [(3, 0.0), (4, 0.0)]), (True, [(4, 0.5), (5, 0.5)])):
        pmax = [] if sparse else ["--p-max", "0"]
        tag = "sp" if sparse else "nosp"
        for B, P in groups:
            bpw = comp(f"luc-b{B}-{tag}", B, P, ["--policy", "luc", *pmax])
            for g in ("layer", "linear"):
                comp(f"budget-{g}-at-luc-b{B}-{tag}", B, P,
                     ["--policy", "budget", "--budget-granularity", g, "--target-bpw",
                      repr(bpw), *pmax])
        for t in (3.5, 4.5):
            for g in ("layer", "linear"):
                # B, P only set luc's pair offered to the knapsack (and luc's default target).
                comp(f"budget-{g}-{t}-{tag}", 4, 0.5 if sparse else 0.0,
                     ["--policy", "budget", "--budget-granularity", g, "--target-bpw", str(t),
                      *pmax])
    print("| row | B | P | bits/w (linears) | Σ sens (per-linear) | ppl |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.4f} | {r[4]:.5f} | {r[5]:.3f} |")


if __name__ == "__main__":
    main()
