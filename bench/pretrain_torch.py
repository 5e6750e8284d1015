#!/usr/bin/python3
# BASELINE ONLY: a PyTorch reference for benchmarking `edgellm pretrain`. It is not part of
# edgellm, is never built or tested with it, and nothing in the project imports it. It exists so
# that bench/pretrain_bench.sh can measure edgellm's pretraining throughput and peak memory
# against a plain PyTorch implementation of the same model, batch and sequence length.
#
# Install (Debian 12; the packages are for the system interpreter /usr/bin/python3, NOT a
# pyenv/venv python3 that may come first on PATH; they are deliberately not listed in
# tools/debian-packages.txt because the project does not need them):
#   apt-get install python3-torch libopenblas0-openmp
# Debian's torch 1.13 does its fp32 GEMMs through the system libblas.so.3, which is the slow
# reference BLAS unless an optimised one is selected. pretrain_bench.sh puts OpenBLAS (OpenMP
# build, so torch.set_num_threads governs it) first on LD_LIBRARY_PATH for this process only,
# leaving the system's alternatives as they are; the JSON reports which BLAS was loaded.
#
# What it trains (mirrors src/train/engine.cpp, src/train/optimizer.h, src/io/random_model.cpp;
# the model classes are in bench/llama_torch.py, shared with bench/alt_torch.py):
#   LLaMA decoder: token embedding; per layer RMSNorm -> q/k/v projections (GQA: kv_heads <=
#   heads, K/V repeated per group) -> RoPE (HF "rotate_half" layout, theta 10000; edgellm keeps
#   q/k rows in the interleaved layout internally, the same function up to a fixed permutation
#   of q/k rows) -> causal softmax attention (eager, as HF's LlamaAttention without SDPA, which
#   torch 1.13 lacks) -> o_proj residual; RMSNorm -> SwiGLU MLP (down(silu(gate)·up)) residual;
#   final RMSNorm; head tied to the embedding or separate. No biases. RMSNorm eps 1e-5.
#   Init: N(0, 0.02) for every matrix, o_proj and down_proj N(0, 0.02/sqrt(2·layers)), norms 1.
#   Loss: mean next-token cross entropy over unmasked targets (fp32 throughout).
#   AdamW: betas (0.9, 0.999), eps 1e-8 (edgellm's AdamWConfig defaults), decoupled weight
#   decay 0.1 on every 2-D tensor (embedding, projections, head), none on norm gains; global
#   gradient-norm clipping at 1.0; constant learning rate (the schedule does not affect speed).
#   One optimizer step = one micro-batch of `batch` sequences (grad accumulation 1).
#
# Data: windows of an edgellm token file (EDGETOK1, written by `edgellm pretrain` into its
# --cache) cut exactly as TokenWindows::fill does (BOS + the first seq-1 tokens of window k as
# input, its seq tokens as targets, a BOS target masked), or random tokens without --tokens.
# --train-windows N draws them in edgellm's seeded order and --init OUT/init starts from
# edgellm's initial weights: then this script and `edgellm pretrain` do the same work step by
# step, and their losses agree (checked by pretrain_bench.sh: equal to 4 decimals over the
# first steps at 1 thread, tiny shape).
#
# Output: one JSON object on stdout: mean seconds per step over the steps after --warmup,
# tokens/s (input tokens per second), peak RSS (getrusage ru_maxrss) and RSS right after
# importing torch (the interpreter + library floor), losses, parameter counts.
#   /usr/bin/python3 bench/pretrain_torch.py --dim 192 --layers 12 --heads 6 --kv-heads 2 \
#       --ff 512 --vocab 4096 --tied --seq 512 --steps 8 --warmup 2 [--tokens FILE]
import argparse
import json
import struct
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch LLaMA pretraining baseline (benchmark only)")
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--ff", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--tied", action="store_true", help="head shares the embedding matrix")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--amp-bf16", action="store_true",
                    help="forward under torch.autocast('cpu', bfloat16): PyTorch's own mixed "
                         "precision (bf16 matmuls, fp32 master weights and AdamW state)")
    ap.add_argument("--tokens", help="edgellm token file (EDGETOK1); default random tokens")
    ap.add_argument("--bos", type=int, default=1)
    ap.add_argument("--train-windows", type=int, default=0,
                    help="draw windows 0..N-1 in edgellm's seeded order (train/data.cpp "
                    "DataOrder with --seed) instead of sequentially")
    ap.add_argument("--init", help="start from an edgellm OUT/init directory (model.safetensors, "
                    "f32, HF names) instead of a fresh random init: the faithfulness check")
    return ap.parse_args()


args = parse_args()
import torch  # noqa: E402  (after argparse so --help works without torch)

# The model (shared with bench/alt_torch.py) and the RSS/BLAS probes.
from llama_torch import Llama, loaded_blas, peak_rss_bytes, rss_now_bytes  # noqa: E402

torch.set_num_threads(args.threads)
rss_after_import = rss_now_bytes()


def load_edgellm_init(model, path):
    """Copies the f32 tensors of an edgellm init/model.safetensors into `model` (HF names)."""
    with open(path + "/model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = bytearray(f.read())
    params = dict(model.named_parameters())
    used = set()
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            sys.exit(f"pretrain_torch.py: {path}: tensor {name} is {meta['dtype']}, expected F32")
        ours = name.removeprefix("model.").replace("self_attn.", "").replace("mlp.", "")
        if ours not in params:
            sys.exit(f"pretrain_torch.py: {path}: tensor {name} has no counterpart ({ours})")
        b, e = meta["data_offsets"]
        t = torch.frombuffer(blob[b:e], dtype=torch.float32).view(meta["shape"])
        if tuple(t.shape) != tuple(params[ours].shape):
            sys.exit(f"pretrain_torch.py: {path}: {name} {list(t.shape)} vs {list(params[ours].shape)}")
        with torch.no_grad():
            params[ours].copy_(t)
        used.add(ours)
    missing = set(params) - used
    if missing:
        sys.exit(f"pretrain_torch.py: {path}: no tensor for {sorted(missing)}")


M64 = (1 << 64) - 1


class Xoshiro:
    """edgellm's util/rng.h generator (xoshiro256** seeded by splitmix64), for its data order."""

    def __init__(self, seed):
        self.s, z = [], seed & M64
        for _ in range(4):
            z = (z + 0x9E3779B97F4A7C15) & M64
            x = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(x ^ (x >> 31))

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64  # noqa: E731
        r = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return r


def edgellm_order(n, seed):
    """Window indices in the order of edgellm's DataOrder(n, seed): a Fisher-Yates shuffle per
    epoch, reseeded with seed·golden + epoch."""
    epoch = 0
    while True:
        perm = list(range(n))
        r = Xoshiro((seed * 0x9E3779B97F4A7C15 + epoch) & M64)
        for i in range(n, 1, -1):
            j = r.next() % i
            perm[i - 1], perm[j] = perm[j], perm[i - 1]
        yield from perm
        epoch += 1


def token_windows(path, seq, bos, order=None):
    """Windows of an EDGETOK1 file, cut as edgellm's TokenWindows::fill does."""
    with open(path, "rb") as f:
        head = f.read(32)
        if head[:8] != b"EDGETOK1":
            sys.exit(f"pretrain_torch.py: {path}: not an edgellm token file (magic)")
        width, n_docs, n, _key = struct.unpack("<IIQQ", head[8:32])
        f.seek(32 + 8 * n_docs)
        dtype = torch.int16 if width == 2 else torch.int32
        raw = torch.frombuffer(bytearray(f.read(n * width)), dtype=dtype).to(torch.int64)
    if width == 2:
        raw = raw & 0xFFFF  # u16 ids read as int16
    k = -1
    while True:
        k = next(order) if order else (k + 1 if (k + 2) * seq <= n else 0)
        s = raw[k * seq:(k + 1) * seq]
        inp = torch.cat((torch.tensor([bos]), s[:-1]))
        tgt = s.clone()
        tgt[tgt == bos] = -100
        yield inp, tgt


def random_windows(vocab, seq, seed):
    g = torch.Generator().manual_seed(seed)
    while True:
        s = torch.randint(0, vocab, (seq + 1,), generator=g)
        yield s[:-1], s[1:]


torch.manual_seed(args.seed)
model = Llama(args)
if args.init:
    load_edgellm_init(model, args.init)
n_params = sum(p.numel() for p in model.parameters())
decay = [p for p in model.parameters() if p.dim() == 2]
no_decay = [p for p in model.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                         {"params": no_decay, "weight_decay": 0.0}],
                        lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
order = edgellm_order(args.train_windows, args.seed) if args.train_windows else None
data = (token_windows(args.tokens, args.seq, args.bos, order) if args.tokens
        else random_windows(args.vocab, args.seq, args.seed))

times, losses = [], []
for step in range(args.warmup + args.steps):
    t0 = time.perf_counter()
    batch = [next(data) for _ in range(args.batch)]
    tokens = torch.stack([b[0] for b in batch])
    targets = torch.stack([b[1] for b in batch])
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp_bf16):
        loss = model(tokens, targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
    opt.step()
    dt = time.perf_counter() - t0
    losses.append(loss.item())
    if step >= args.warmup:
        times.append(dt)

blas = loaded_blas()
mean = sum(times) / len(times)
print(json.dumps({
    "engine": "pytorch-bf16" if args.amp_bf16 else "pytorch",
    "torch": torch.__version__,
    "blas": blas,
    "threads": torch.get_num_threads(),
    "n_params": n_params,
    "seq": args.seq,
    "batch": args.batch,
    "warmup": args.warmup,
    "steps": args.steps,
    "s_per_step": mean,
    "s_per_step_min": min(times),
    "step_seconds": times,
    "tokens_per_s": args.seq * args.batch / mean,
    "peak_rss_bytes": peak_rss_bytes(),
    "rss_after_import_bytes": rss_after_import,
    "losses": losses,
}))
