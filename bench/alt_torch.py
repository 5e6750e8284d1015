#!/usr/bin/python3
# BASELINE ONLY: a PyTorch reference for benchmarking `edgellm tune --method alt` (adaptive layer
# tuning, Edge-LLM PAPER.md §2) and `--method lora` against a plain framework implementation of
# the same step. It is not part of edgellm, is never built or tested with it, and nothing in the
# project imports it; bench/alt_vs_lora.sh runs it beside edgellm. Install: as for
# bench/pretrain_torch.py (python3-torch + libopenblas0-openmp for /usr/bin/python3; run it with
# /usr/bin/python3, not a pyenv/venv python3 that may come first on PATH).
#
# What one step does (the model is bench/llama_torch.py, the one bench/pretrain_torch.py uses:
# LLaMA with RMSNorm, RoPE, SwiGLU, GQA where the shape has it; random N(0, 0.02) weights, fp32,
# frozen; random tokens, one sequence of --seq tokens per step):
#   --method lora: LoRA on every layer, forward through all L layers and the model's head,
#     backward through all of them (vanilla LoRA).
#   --method alt --exit D: the Edge-LLM step for the exit after layer D with a window of m
#     layers, l0 = max(0, D - m): the embedding and layers [0, l0) under torch.no_grad() (the
#     frozen prefix: nothing saved for backward), layers [l0, D) with autograd, the exit head at
#     D, cross-entropy over the sequence, backward through the window only. Nothing above D runs.
#     --lora-mode cumulative (edgellm's default) keeps the prefix's adapters active, branch (the
#     official code) runs the frozen base there; the cost is the same up to the adapters' GEMMs.
#     No prefix cache here (edgellm's branch-mode cache has no counterpart in this baseline).
# As edgellm tune's defaults (src/model/lora.h LoraConfig, src/train/trainer.h TuneOptions,
# src/train/optimizer.h AdamWConfig): LoRA rank 8, alpha 16 (scale alpha/rank), dropout 0, on
# q,k,v,o,gate,up,down of every layer, A ~ kaiming-uniform, B = 0; AdamW lr 4e-4, betas (0.9,
# 0.999), eps 1e-8, weight decay 0, global gradient-norm clip 1.0, over the parameters the step
# trains (the window's adapters and the exit's head; as PyTorch's AdamW skips parameters without
# a gradient). Exit head: edgellm's default `--head-mode shared` — the model's frozen final
# RMSNorm + LM head, shared by every exit, with a trainable per-exit copy of the RMSNorm gain (C
# values) for an exit below L; the exit at L is the model's own head, nothing trained for it.
#
# Output: one JSON object on stdout: seconds of each step after the first (dropped: warm-up),
# their mean (s_per_iter), peak RSS (getrusage ru_maxrss), RSS after `import torch` and RSS
# before the first step (weights + adapters resident), the exit, window and layer range, losses.
#   /usr/bin/python3 bench/alt_torch.py --shape 134M --method alt --exit 12 --window 3 --steps 2
#   /usr/bin/python3 bench/alt_torch.py --shape 134M --method lora --steps 2
#   --shape also takes edgellm's key=value form: dim=64,layers=8,heads=4,kv_heads=2,ff=172,vocab=512
import argparse
import json
import math
import sys
import time

# edgellm's presets (src/model/config.cpp ModelConfig::preset; `edgellm make-model --help`).
PRESETS = {
    "stories260K": dict(dim=64, ff=172, layers=5, heads=8, kv_heads=4, vocab=512, ctx=512,
                        tied=True),
    "134M": dict(dim=768, ff=2048, layers=12, heads=12, kv_heads=12, vocab=32000, ctx=2048,
                 tied=False),
    "tinyllama-1.1b": dict(dim=2048, ff=5632, layers=22, heads=32, kv_heads=4, vocab=32000,
                           ctx=2048, tied=False),
}
TARGETS = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj",
           "up": "up_proj", "down": "down_proj"}


def parse_shape(spec):
    """A preset name or edgellm's `--shape` key=value list (base=PRESET, dim, layers, heads,
    kv_heads, ff, vocab, tied; ctx, head_dim, theta, eps only where this model agrees)."""
    if "=" not in spec:
        if spec not in PRESETS:
            sys.exit(f"alt_torch.py: --shape {spec}: unknown (known: {', '.join(PRESETS)}, or "
                     "key=value,...)")
        return dict(PRESETS[spec])
    kv = dict(item.split("=", 1) for item in spec.split(",") if item)
    s = dict(PRESETS[kv.pop("base")]) if "base" in kv else {}
    for key in ("dim", "layers", "heads", "kv_heads", "ff", "vocab", "tied"):
        if key in kv:
            s[key] = int(kv.pop(key))
    s["tied"] = bool(s.get("tied", False))
    missing = [k for k in ("dim", "layers", "heads", "kv_heads", "ff", "vocab") if k not in s]
    if missing:
        sys.exit(f"alt_torch.py: --shape {spec}: missing {missing} (or give base=PRESET)")
    # The shared model fixes head_dim = dim/heads, RoPE theta 10000 and RMSNorm eps 1e-5.
    fixed = {"head_dim": s["dim"] // s["heads"], "theta": 10000.0, "eps": 1e-5}
    for key, want in fixed.items():
        if key in kv and not math.isclose(float(kv.pop(key)), want, rel_tol=1e-4):
            sys.exit(f"alt_torch.py: --shape {spec}: {key} must be {want} in this baseline")
    s["ctx"] = int(kv.pop("ctx", s.get("ctx", 1 << 20)))
    if kv:
        sys.exit(f"alt_torch.py: --shape {spec}: unknown keys {sorted(kv)}")
    if s["dim"] % s["heads"] or s["heads"] % s["kv_heads"]:
        sys.exit(f"alt_torch.py: --shape {spec}: dim % heads or heads % kv_heads is not 0")
    return s


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch Edge-LLM ALT / vanilla LoRA step "
                                 "baseline (benchmark only)")
    ap.add_argument("--shape", required=True, help="134M | tinyllama-1.1b | stories260K | "
                    "dim=..,layers=..,heads=..,kv_heads=..,ff=..,vocab=..[,tied=1]")
    ap.add_argument("--method", choices=("lora", "alt"), required=True)
    ap.add_argument("--exit", type=int, default=0,
                    help="alt: exit depth D (layers below the exit head; default L)")
    ap.add_argument("--exits", type=int, default=4, help="alt: T, for the default window")
    ap.add_argument("--window", type=int, default=0,
                    help="alt: layers back-propagated, m (default ceil(L/T) as edgellm)")
    ap.add_argument("--lora-mode", choices=("cumulative", "branch"), default="cumulative")
    ap.add_argument("--steps", type=int, default=2, help="timed steps, after one warm-up step")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--targets", default="q,k,v,o,gate,up,down")
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    a.shape_spec = a.shape
    s = parse_shape(a.shape)
    for k, v in s.items():
        setattr(a, k.replace("-", "_"), v)
    L = a.layers
    a.exit = a.exit or L
    if not 1 <= a.exit <= L:
        sys.exit(f"alt_torch.py: --exit {a.exit}: must be within 1..{L}")
    if a.method == "lora" and a.exit != L:
        sys.exit("alt_torch.py: --exit needs --method alt")
    if a.exits < 1 or a.window < 0 or a.steps < 1 or a.rank < 1:
        sys.exit("alt_torch.py: --exits, --steps, --rank must be positive, --window >= 0")
    if a.seq < 2 or a.seq > a.ctx:
        sys.exit(f"alt_torch.py: --seq {a.seq}: must be within 2..{a.ctx}")
    bad = [t for t in a.targets.split(",") if t not in TARGETS]
    if bad:
        sys.exit(f"alt_torch.py: --targets {a.targets}: unknown {bad} "
                 f"(known: {', '.join(TARGETS)})")
    a.window = a.window or math.ceil(L / a.exits)
    return a


args = parse_args()
import torch  # noqa: E402  (after argparse so --help works without torch)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from llama_torch import Llama, RMSNorm, loaded_blas, peak_rss_bytes, rss_now_bytes  # noqa: E402

torch.set_num_threads(args.threads)
rss_after_import = rss_now_bytes()


class LoraLinear(nn.Module):
    """y = W x + (alpha/r)·B A x with W frozen (PEFT's LoRA, dropout 0)."""

    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = alpha / rank
        self.enabled = True  # branch mode turns the prefix's adapters off

    def forward(self, x):
        y = self.base(x)
        if not self.enabled:
            return y
        return y + ((x @ self.lora_A.t()) * self.scale) @ self.lora_B.t()


torch.manual_seed(args.seed)
model = Llama(args)
model.requires_grad_(False)  # frozen base: no weight gradients anywhere
n_params = sum(p.numel() for p in model.parameters())
targets = [TARGETS[t] for t in args.targets.split(",")]
lora_of_layer = []
for block in model.layers:
    mods = []
    for name in targets:
        m = LoraLinear(getattr(block, name), args.rank, args.alpha)
        setattr(block, name, m)
        mods.append(m)
    lora_of_layer.append(mods)
n_lora = sum(p.numel() for mods in lora_of_layer for m in mods for p in (m.lora_A, m.lora_B))

L, d = args.layers, args.exit
l0 = max(0, d - args.window) if args.method == "alt" else 0
for layer in range(L):
    for m in lora_of_layer[layer]:
        m.enabled = layer >= l0 or args.lora_mode == "cumulative"
# Exit head: frozen shared norm + LM head; an exit below L trains its own copy of the gain.
head_w = model.embed_tokens.weight if model.lm_head is None else model.lm_head.weight
if d < L:
    exit_norm = RMSNorm(args.dim)
    with torch.no_grad():
        exit_norm.weight.copy_(model.norm.weight)
    head_params = [exit_norm.weight]
else:
    exit_norm = model.norm
    head_params = []
trained = [p for layer in range(l0, d) for m in lora_of_layer[layer]
           for p in (m.lora_A, m.lora_B)] + head_params
opt = torch.optim.AdamW(trained, lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                        weight_decay=args.weight_decay)
gen = torch.Generator().manual_seed(args.seed)


def step():
    seq = torch.randint(0, args.vocab, (1, args.seq + 1), generator=gen)
    tokens, tgt = seq[:, :-1], seq[:, 1:]
    T = args.seq
    cos, sin, mask = model.cos[:T], model.sin[:T], model.mask[:T, :T]
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():  # the frozen prefix: nothing is kept for backward
        x = model.embed_tokens(tokens)
        for layer in model.layers[:l0]:
            x = layer(x, cos, sin, mask)
    for layer in model.layers[l0:d]:
        x = layer(x, cos, sin, mask)
    logits = exit_norm(x) @ head_w.t()
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), tgt.reshape(-1))
    loss.backward()
    if args.clip > 0:
        torch.nn.utils.clip_grad_norm_(trained, args.clip)
    opt.step()
    return loss.item()


rss_before_steps = rss_now_bytes()
seconds, losses = [], []
for _ in range(1 + args.steps):
    t0 = time.perf_counter()
    losses.append(step())
    seconds.append(time.perf_counter() - t0)
timed = seconds[1:]  # the first step warms up (allocator, BLAS buffers, optimizer state)
print(json.dumps({
    "engine": "pytorch",
    "baseline": "bench/alt_torch.py",
    "torch": torch.__version__,
    "blas": loaded_blas(),
    "threads": torch.get_num_threads(),
    "shape": args.shape_spec,
    "method": args.method,
    "lora_mode": args.lora_mode if args.method == "alt" else None,
    "n_layers": L,
    "exit_depth": d,
    "window": d - l0,
    "first_window_layer": l0,
    "seq": args.seq,
    "n_params": n_params,
    "lora_params": n_lora,
    "trained_params_per_step": sum(p.numel() for p in trained),
    "step_seconds": timed,
    "warmup_seconds": seconds[0],
    "s_per_iter": sum(timed) / len(timed),
    "peak_rss_bytes": peak_rss_bytes(),
    "rss_after_import_bytes": rss_after_import,
    "rss_before_steps_bytes": rss_before_steps,
    "losses": losses,
}))
