#!/usr/bin/env python3
"""Builds the lineage evaluation corpus (spec/fingerprint.md §6). The corpus is not committed.

Real weights, real operations: a small next-character model (embedding, three hidden
matrices, a llama-style attn_q/attn_k pair, output) is trained with numpy on real text (the
Python standard library's own source files). From one trained base it makes forks (full
fine-tunes and LoRA-style low-rank fine-tunes, each on its own slice of text), and from each
fork the derivatives the issue lists; the negatives are the other forks (siblings: the same
base, changes of the same size) and their derivatives, plus independently trained models of
the same shapes. Limit series (further training, pruning, distillation) are made for a few
forks. The fixtures of tests/fixtures are added as format cases by the calibration command.

    python3 -m venv /tmp/ws-corpus && /tmp/ws-corpus/bin/pip install numpy safetensors gguf
    /tmp/ws-corpus/bin/python tests/lineage/make_corpus.py OUT_DIR [--forks 20]

OUT_DIR gets base/, unrelated-K/, fork-I/ and fork-I/<transformation>/ model folders and a
manifest.json listing every model with its role (what is derived from what).
"""
import argparse
import glob
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file
import gguf
from gguf.quants import quantize

V, C, D, H = 96, 4, 128, 256          # vocab, context, embedding, hidden
N_HEAD = 4                            # attn_q/attn_k: 256 rows = 4 heads of 64
LR = 0.05


def text_corpus():
    files = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))
    data = []
    for f in files:
        with open(f, "rb") as fh:
            b = fh.read()
        data.append(np.frombuffer(b, dtype=np.uint8).astype(np.int64))
    raw = np.concatenate(data)
    tok = np.clip(raw - 32, 0, V - 1)  # printable ASCII to 0..95
    return tok


def init(rng):
    s = lambda fan_in: 1.0 / np.sqrt(fan_in)
    return {
        "embed.weight": rng.standard_normal((V, D)).astype(np.float32) * 0.5,
        "fc1.weight": (rng.standard_normal((H, C * D)) * s(C * D)).astype(np.float32),
        "attn_q.weight": (rng.standard_normal((H, H)) * s(H)).astype(np.float32),
        "attn_k.weight": (rng.standard_normal((H, H)) * s(H)).astype(np.float32),
        "fc2.weight": (rng.standard_normal((D, H)) * s(H)).astype(np.float32),
        "out.weight": (rng.standard_normal((V, D)) * s(D)).astype(np.float32),
        "norm.weight": np.ones(D, dtype=np.float32),
    }


def forward(p, x):
    e = p["embed.weight"][x].reshape(len(x), C * D)
    z1 = np.maximum(e @ p["fc1.weight"].T, 0)
    a = np.tanh(z1 @ p["attn_q.weight"].T)
    z2 = z1 + a
    b = np.tanh(z2 @ p["attn_k.weight"].T)
    z3 = z2 + b
    o = (z3 @ p["fc2.weight"].T) * p["norm.weight"]
    logits = o @ p["out.weight"].T
    return logits, (e, z1, a, z2, b, z3, o)


def grads(p, x, y=None, target_probs=None):
    n = len(x)
    logits, (e, z1, a, z2, b, z3, o) = forward(p, x)
    logits -= logits.max(1, keepdims=True)
    pr = np.exp(logits)
    pr /= pr.sum(1, keepdims=True)
    if target_probs is None:
        loss = -np.log(pr[np.arange(n), y] + 1e-9).mean()
        dl = pr.copy()
        dl[np.arange(n), y] -= 1
    else:
        loss = -(target_probs * np.log(pr + 1e-9)).sum(1).mean()
        dl = pr - target_probs
    dl /= n
    g = {}
    g["out.weight"] = dl.T @ o
    do = dl @ p["out.weight"]
    u = z3 @ p["fc2.weight"].T
    g["norm.weight"] = (do * u).sum(0)
    du = do * p["norm.weight"]
    g["fc2.weight"] = du.T @ z3
    dz3 = du @ p["fc2.weight"]
    db = dz3 * (1 - b * b)
    g["attn_k.weight"] = db.T @ z2
    dz2 = dz3 + db @ p["attn_k.weight"]
    da = dz2 * (1 - a * a)
    g["attn_q.weight"] = da.T @ z1
    dz1 = dz2 + da @ p["attn_q.weight"]
    dz1 *= z1 > 0
    g["fc1.weight"] = dz1.T @ e
    de = (dz1 @ p["fc1.weight"]).reshape(n, C, D)
    ge = np.zeros_like(p["embed.weight"])
    np.add.at(ge, x, de)
    g["embed.weight"] = ge
    return loss, g


BATCH = 64


def batches(tok, lo, hi, rng, n=None):
    n = n or BATCH
    idx = rng.integers(lo, hi - C - 1, size=n)
    x = np.stack([tok[i:i + C] for i in idx])
    y = tok[idx + C]
    return x, y


def train(p, tok, lo, hi, steps, seed, lr=LR, lora_rank=None):
    """SGD with momentum; with lora_rank, every matrix's update is kept at that rank
    (trained factors A, B with W = W0 + B @ A), then merged."""
    rng = np.random.default_rng(seed)
    p = {k: v.copy() for k, v in p.items()}
    mom = {k: np.zeros_like(v) for k, v in p.items()}
    if lora_rank:
        base = {k: v.copy() for k, v in p.items()}
        fa = {k: (rng.standard_normal((lora_rank, v.shape[1])) * 0.01).astype(np.float32)
              for k, v in p.items() if v.ndim == 2}
        fb = {k: np.zeros((v.shape[0], lora_rank), np.float32) for k, v in p.items() if v.ndim == 2}
    loss = 0.0
    for _ in range(steps):
        x, y = batches(tok, lo, hi, rng)
        loss, g = grads(p, x, y)
        if lora_rank:
            for k in fa:
                ga, gb = fb[k].T @ g[k], g[k] @ fa[k].T
                fa[k] -= lr * 16 * ga
                fb[k] -= lr * 16 * gb
                p[k] = base[k] + fb[k] @ fa[k]
        else:
            for k in p:
                mom[k] = 0.9 * mom[k] + g[k]
                p[k] -= lr * mom[k]
    return p, float(loss)


def distill(student, teacher, tok, lo, hi, steps, seed):
    rng = np.random.default_rng(seed)
    p = {k: v.copy() for k, v in student.items()}
    for _ in range(steps):
        x, _ = batches(tok, lo, hi, rng)
        t, _ = forward(teacher, x)
        t = np.exp(t - t.max(1, keepdims=True))
        t /= t.sum(1, keepdims=True)
        _, g = grads(p, x, target_probs=t)
        for k in p:
            p[k] -= LR * g[k]
    return p


# ---- transformations -------------------------------------------------------------

def save_st(folder, p, shards=1, rename=None, dtype=np.float32):
    os.makedirs(folder, exist_ok=True)
    names = list(p)
    parts = np.array_split(np.arange(len(names)), shards)
    for i, part in enumerate(parts):
        d = {}
        for j in part:
            k = names[j]
            d[rename(k) if rename else k] = np.ascontiguousarray(p[k].astype(dtype))
        save_file(d, os.path.join(folder, f"model-{i + 1:05d}-of-{shards:05d}.safetensors"))


def llama_permute(w, n_head):
    # convert_hf_to_gguf's LlamaModel.permute
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


GGUF_NAMES = {"embed.weight": "token_embd.weight", "fc1.weight": "blk.0.ffn_up.weight",
              "attn_q.weight": "blk.0.attn_q.weight", "attn_k.weight": "blk.0.attn_k.weight",
              "fc2.weight": "blk.0.ffn_down.weight", "out.weight": "output.weight",
              "norm.weight": "output_norm.weight"}


def save_gguf(folder, p, qtype):
    os.makedirs(folder, exist_ok=True)
    w = gguf.GGUFWriter(os.path.join(folder, "model.gguf"), "llama")
    w.add_block_count(1)
    for k, v in p.items():
        if k in ("attn_q.weight", "attn_k.weight"):
            v = llama_permute(v, N_HEAD)
        name = GGUF_NAMES[k]
        if v.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, v.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, v.astype(np.float16))
        else:
            q = quantize(v.astype(np.float32), qtype)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def bitflip(p, rng):
    out = {}
    for k, v in p.items():
        v = v.copy().reshape(-1)
        i = rng.integers(0, v.size)
        bits = v.view(np.uint32)
        bits[i] ^= np.uint32(1 << int(rng.integers(0, 32)))
        out[k] = v.reshape(p[k].shape)
    return out


def cast_chain(p):
    # F32 -> F16 -> BF16 (truncation, as torch does for a cast from f32 through f16)
    out = {}
    for k, v in p.items():
        h = v.astype(np.float16).astype(np.float32)
        bits = h.view(np.uint32) & np.uint32(0xFFFF0000)
        out[k] = bits.view(np.float32)
    return out


def vocab_permute(p, rng):
    perm = rng.permutation(V)
    out = dict(p)
    out["embed.weight"] = p["embed.weight"][perm]
    out["out.weight"] = p["out.weight"][perm]
    return out


def prune(p, frac):
    out = {}
    for k, v in p.items():
        if v.ndim < 2:
            out[k] = v
            continue
        t = np.quantile(np.abs(v), frac)
        out[k] = np.where(np.abs(v) < t, 0, v).astype(np.float32)
    return out


def delta_norm(a, b):
    return float(np.sqrt(sum(((a[k] - b[k]) ** 2).sum() for k in a)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--forks", type=int, default=8)
    ap.add_argument("--unrelated", type=int, default=2)
    ap.add_argument("--base-steps", type=int, default=300)
    ap.add_argument("--fork-steps", type=int, default=30)
    ap.add_argument("--limit-forks", type=int, default=1)
    args = ap.parse_args()
    tok = text_corpus()
    n = len(tok)
    half = n // 2
    os.makedirs(args.out, exist_ok=True)
    models = []

    def add(path, role, **kw):
        models.append(dict(path=os.path.relpath(path, args.out), role=role, **kw))

    base, loss = train(init(np.random.default_rng(0)), tok, 0, half, args.base_steps, 1)
    print(f"base: loss {loss:.3f}", flush=True)
    save_st(os.path.join(args.out, "base"), base)
    add(os.path.join(args.out, "base"), "base")
    for u in range(args.unrelated):
        m, l = train(init(np.random.default_rng(100 + u)), tok, 0, half, args.base_steps // 2, 200 + u)
        d = os.path.join(args.out, f"unrelated-{u}")
        save_st(d, m)
        add(d, "unrelated")
        print(f"unrelated {u}: loss {l:.3f}", flush=True)
    slice_len = (n - half) // args.forks
    for f in range(args.forks):
        lo = half + f * slice_len
        hi = lo + slice_len
        lora = 8 if f % 2 else None
        fork, l = train(base, tok, lo, hi, args.fork_steps, 1000 + f, lora_rank=lora)
        own = delta_norm(fork, base)
        fd = os.path.join(args.out, f"fork-{f}")
        save_st(os.path.join(fd, "self"), fork)
        add(os.path.join(fd, "self"), "fork", fork=f, kind="lora" if lora else "full", change=own)
        rng = np.random.default_rng(5000 + f)
        tr = {
            "bitflip": lambda: save_st(os.path.join(fd, "bitflip"), bitflip(fork, rng)),
            "cast-f16-bf16": lambda: save_st(os.path.join(fd, "cast-f16-bf16"), cast_chain(fork)),
            "gguf-q8_0": lambda: save_gguf(os.path.join(fd, "gguf-q8_0"), fork, gguf.GGMLQuantizationType.Q8_0),
            "gguf-q4_0": lambda: save_gguf(os.path.join(fd, "gguf-q4_0"), fork, gguf.GGMLQuantizationType.Q4_0),
            # llama.cpp's usual path: convert to an F16 GGUF, then quantize that.
            "gguf-q4_0-from-f16": lambda: save_gguf(os.path.join(fd, "gguf-q4_0-from-f16"), {
                k: v.astype(np.float16).astype(np.float32) for k, v in fork.items()},
                gguf.GGMLQuantizationType.Q4_0),
            "gguf-f16": lambda: save_gguf(os.path.join(fd, "gguf-f16"), fork, gguf.GGMLQuantizationType.F16),
            "resharded-renamed": lambda: save_st(os.path.join(fd, "resharded-renamed"), fork, shards=3,
                                                 rename=lambda k: "model.layers.0." + k),
            "vocab-permuted": lambda: save_st(os.path.join(fd, "vocab-permuted"), vocab_permute(fork, rng)),
            "noise": lambda: save_st(os.path.join(fd, "noise"), {
                k: (v + rng.standard_normal(v.shape).astype(np.float32) * 0.01 * np.abs(v).mean()).astype(np.float32)
                for k, v in fork.items()}),
        }
        # Further training on the fork's own kind of data, until its change from the fork
        # is at least the fork's own change from the base. The search starts at one step:
        # a LoRA fork changes about 20 times less than a full fine-tune, and starting at
        # fork_steps would train it 8 to 20 times its own change, not once.
        steps = 1
        while True:
            more, _ = train(fork, tok, lo, hi, steps, 7000 + f)
            if delta_norm(more, fork) >= own or steps >= 16 * args.fork_steps:
                break
            steps *= 2
        further = delta_norm(more, fork) / own
        tr["trained-further-1x"] = lambda: save_st(os.path.join(fd, "trained-further-1x"), more)
        for name, make in tr.items():
            make()
            extra = {"amount": further} if name == "trained-further-1x" else {}
            add(os.path.join(fd, name), "descendant", fork=f, transformation=name, **extra)
        print(f"fork {f}: {'lora' if lora else 'full'}, change {own:.3f}, loss {l:.3f}", flush=True)
        if f < args.limit_forks:
            # Limit series: further training in doubling step counts (1, 2, 4, … up to 16
            # times fork_steps), each point the amount of change relative to the fork's own.
            cur = fork
            total = 0
            nsteps = 1
            k = 0
            while nsteps <= 16 * args.fork_steps:
                k += 1
                cur, _ = train(cur, tok, lo, hi, nsteps - total, 9000 + 10 * f + k)
                total = nsteps
                d = os.path.join(fd, f"limit-train-{k}")
                save_st(d, cur)
                add(d, "limit", fork=f, series="further training",
                    amount=delta_norm(cur, fork) / own)
                nsteps *= 2
            for frac in (0.1, 0.3, 0.5, 0.7, 0.9):
                d = os.path.join(fd, f"limit-prune-{int(frac * 100)}")
                save_st(d, prune(fork, frac))
                add(d, "limit", fork=f, series="magnitude pruning", amount=frac)
            for steps_d in (30, 120):
                d = os.path.join(fd, f"limit-distill-base-{steps_d}")
                save_st(d, distill(base, fork, tok, lo, hi, steps_d, 11000 + f))
                add(d, "limit", fork=f, series="distillation into the base", amount=steps_d)
            d = os.path.join(fd, "limit-distill-fresh")
            save_st(d, distill(init(np.random.default_rng(300 + f)), fork, tok, lo, hi, 120, 12000 + f))
            add(d, "limit", fork=f, series="distillation into a fresh model", amount=120)
    with open(os.path.join(args.out, "manifest.json"), "w") as fh:
        json.dump({"models": models}, fh, indent=1)
    print(f"{len(models)} models in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
