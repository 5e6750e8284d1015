# BASELINE ONLY: the LLaMA decoder shared by the PyTorch baselines bench/pretrain_torch.py and
# bench/alt_torch.py. Not part of edgellm; nothing in the project imports it. See
# bench/pretrain_torch.py for what the model mirrors (src/train/engine.cpp, src/io/random_model.cpp)
# and how to install torch for the system interpreter /usr/bin/python3.
#
# Llama(a) reads a.dim, a.layers, a.heads, a.kv_heads, a.ff, a.vocab, a.tied, a.seq (an
# argparse namespace or anything with those attributes).
import math
import os
import resource

import torch
import torch.nn as nn
import torch.nn.functional as F


def rss_now_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def loaded_blas():
    """The BLAS libraries mapped into this process (Debian's torch uses the system libblas.so.3,
    which is the slow reference BLAS unless OpenBLAS comes first on LD_LIBRARY_PATH)."""
    return sorted({ln.split()[-1] for ln in open("/proc/self/maps")
                   if "blas" in ln and ln.split()[-1].startswith("/")})


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.nh, self.nkv = a.heads, a.kv_heads
        self.hd = a.dim // a.heads
        self.input_layernorm = RMSNorm(a.dim)
        self.q_proj = nn.Linear(a.dim, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(a.dim, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(a.dim, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, a.dim, bias=False)
        self.post_attention_layernorm = RMSNorm(a.dim)
        self.gate_proj = nn.Linear(a.dim, a.ff, bias=False)
        self.up_proj = nn.Linear(a.dim, a.ff, bias=False)
        self.down_proj = nn.Linear(a.ff, a.dim, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        if rep > 1:  # GQA: each K/V head serves `rep` query heads
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, self.nh * self.hd)
        x = x + self.o_proj(o)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab, a.dim)
        self.layers = nn.ModuleList(Block(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.dim)
        self.lm_head = None if a.tied else nn.Linear(a.dim, a.vocab, bias=False)
        hd = a.dim // a.heads
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        ang = torch.outer(torch.arange(a.seq, dtype=torch.float64), inv)
        ang = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)
        self.register_buffer(
            "mask", torch.full((a.seq, a.seq), float("-inf")).triu(1), persistent=False)
        std, out_std = 0.02, 0.02 / math.sqrt(2 * a.layers)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, out_std if ("o_proj" in name or "down_proj" in name) else std)

    def forward(self, tokens, targets):
        T = tokens.shape[1]
        x = self.embed_tokens(tokens)
        cos, sin, mask = self.cos[:T], self.sin[:T], self.mask[:T, :T]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        w = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        logits = x @ w.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1),
                               ignore_index=-100)
