#!/usr/bin/env python3
"""Dequantization vectors for spec/fingerprint.md §3, made and checked by the `gguf` package.

`gguf.quants.dequantize` (llama.cpp's own Python reference) decodes every block; the Rust
test `fingerprint_dequant_vectors` decodes the same bytes and must agree bit for bit.

Inputs: for each GGUF type, blocks of random bytes (numpy seed 9) whose f16 scale fields are
replaced by finite random halves, so every code path of the block runs and no NaN appears.
For Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 a second set comes from `gguf.quants.quantize` of a normal sample.

Re-quantization vectors (requant.json, spec/fingerprint.md §5): f32 blocks and what
`dequantize(quantize(block))` gives for Q4_0 and Q8_0, the reference quantizers the fork test
re-runs; the Rust test `fingerprint_requant_vectors` runs `quantize_round_trip` on the same
blocks and must agree bit for bit. Besides normal samples at several scales they hold the
blocks where a quantizer's rules show: ties in magnitude (the first wins in Q4_0), a negative
extreme, an all-zero block, values on a rounding half, and scales at the edge of f16.

    python3 -m venv /tmp/ws-fp && /tmp/ws-fp/bin/pip install numpy gguf
    /tmp/ws-fp/bin/python spec/vectors/fingerprint/dequant_vectors.py          # check
    /tmp/ws-fp/bin/python spec/vectors/fingerprint/dequant_vectors.py --write  # regenerate
"""
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "dequant.json")
REQUANT_PATH = os.path.join(HERE, "requant.json")
# Byte offsets of the f16 scale/minimum fields in each block (ggml's block structs).
HALVES = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
PLAIN = {T.F32: np.float32, T.F16: np.float16, T.BF16: None}
BLOCKS = 3


def make():
    rng = np.random.default_rng(9)
    cases = []
    for ty, fields in HALVES.items():
        block, size = GGML_QUANT_SIZES[ty]
        raw = rng.integers(0, 256, size=(BLOCKS, size), dtype=np.uint8)
        for off in fields:
            h = (rng.standard_normal(BLOCKS) * 0.05).astype(np.float16)
            raw[:, off:off + 2] = h.view(np.uint8).reshape(BLOCKS, 2)
        cases.append((ty.name + " random blocks", ty, raw.tobytes()))
        if ty in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
            x = (rng.standard_normal(block * BLOCKS) * 0.02).astype(np.float32).reshape(1, -1)
            cases.append((ty.name + " quantized normal", ty, quantize(x, ty).tobytes()))
    x = (rng.standard_normal(64) * 3).astype(np.float32)
    x[:4] = [0.0, -0.0, 1e-8, 65504.0]
    cases.append(("F32", T.F32, x.tobytes()))
    cases.append(("F16", T.F16, x.astype(np.float16).tobytes()))
    bf = (x.view(np.uint32) >> 16).astype(np.uint16)
    cases.append(("BF16", T.BF16, bf.tobytes()))
    out = []
    for name, ty, data in cases:
        arr = np.frombuffer(data, dtype=np.uint8)
        if ty == T.F16:
            arr = arr.view(np.float16)
        elif ty == T.F32:
            arr = arr.view(np.float32)
        else:
            arr = arr.reshape(1, -1)
        values = np.asarray(dequantize(arr, ty), dtype=np.float32).reshape(-1)
        out.append({
            "name": name,
            "type": ty.name,
            "bytes": data.hex(),
            "values_f32_le": values.tobytes().hex(),
        })
    return {
        "comment": "Made by dequant_vectors.py with gguf.quants.dequantize (gguf package); "
                   "values are little-endian f32.",
        "cases": out,
    }


def requant_blocks():
    """Named f32 blocks of 32 values for the re-quantization vectors."""
    rng = np.random.default_rng(11)
    blocks = []
    for scale in (1e-4, 0.02, 3.0):
        for i in range(4):
            blocks.append((f"normal x{scale} #{i}", rng.standard_normal(32) * scale))
    ramp = (np.arange(32) - 13.3) * 0.01
    blocks.append(("ramp", ramp))
    tie = rng.standard_normal(32) * 0.01
    tie[5], tie[20] = -0.5, 0.5  # equal magnitude: Q4_0 takes the first (negative) one
    blocks.append(("tie, negative first", tie))
    tie2 = tie.copy()
    tie2[5], tie2[20] = 0.5, -0.5
    blocks.append(("tie, positive first", tie2))
    neg = rng.standard_normal(32) * 0.01
    neg[9] = -0.9
    blocks.append(("negative extreme", neg))
    blocks.append(("all zero", np.zeros(32)))
    # Negative zeros after a positive first value. A block whose first value is -0.0 and
    # all others zero is where the two references part: ggml's C quantizer starts from
    # max = +0.0 (d = -0.0) and numpy's argmax takes the -0.0 (d = +0.0); we follow the C
    # code, which is what llama-quantize runs, so that block is not a vector here.
    signed_zero = np.zeros(32)
    signed_zero[1::2] = -0.0
    blocks.append(("signed zeros", signed_zero))
    one = np.zeros(32)
    one[31] = 1e-3
    blocks.append(("one value", one))
    # Values on a rounding half of the Q8_0 step (d = 127/127 = 1): k + 0.5.
    halves = np.array([(k % 7) + 0.5 for k in range(32)], dtype=np.float64)
    halves[0] = 127.0
    blocks.append(("on halves", halves))
    blocks.append(("large, near f16's maximum scale", rng.standard_normal(32) * 2e5))
    blocks.append(("tiny, subnormal f16 scale", rng.standard_normal(32) * 1e-7))
    return [(name, np.asarray(b, dtype=np.float32)) for name, b in blocks]


def requant_make():
    out = []
    for ty in (T.Q4_0, T.Q8_0):
        for name, block in requant_blocks():
            x = block.reshape(1, 32)
            values = np.asarray(dequantize(quantize(x, ty), ty), dtype=np.float32).reshape(-1)
            out.append({
                "name": f"{ty.name} {name}",
                "type": ty.name,
                "block_f32_le": block.tobytes().hex(),
                "round_trip_f32_le": values.tobytes().hex(),
            })
    return {
        "comment": "Made by dequant_vectors.py: dequantize(quantize(block)) with the gguf "
                   "package's reference quantizers; values are little-endian f32.",
        "cases": out,
    }


def requant_check():
    with open(REQUANT_PATH) as f:
        stored = json.load(f)
    bad = 0
    for case in stored["cases"]:
        ty = T[case["type"]]
        x = np.frombuffer(bytes.fromhex(case["block_f32_le"]), dtype=np.float32).reshape(1, 32)
        got = np.asarray(dequantize(quantize(x, ty), ty), dtype=np.float32).reshape(-1)
        if got.tobytes().hex() != case["round_trip_f32_le"]:
            print(f"MISMATCH {case['name']}")
            bad += 1
    return len(stored["cases"]), bad


def main():
    fresh = make()
    if "--write" in sys.argv:
        with open(PATH, "w") as f:
            json.dump(fresh, f, indent=1)
            f.write("\n")
        requant = requant_make()
        with open(REQUANT_PATH, "w") as f:
            json.dump(requant, f, indent=1)
            f.write("\n")
        print(f"wrote {len(fresh['cases'])} dequantization and {len(requant['cases'])} re-quantization cases")
        return 0
    with open(PATH) as f:
        stored = json.load(f)
    bad = 0
    for case in stored["cases"]:
        ty = T[case["type"]]
        data = bytes.fromhex(case["bytes"])
        arr = np.frombuffer(data, dtype=np.uint8)
        if ty == T.F16:
            arr = arr.view(np.float16)
        elif ty == T.F32:
            arr = arr.view(np.float32)
        else:
            arr = arr.reshape(1, -1)
        got = np.asarray(dequantize(arr, ty), dtype=np.float32).reshape(-1).tobytes().hex()
        if got != case["values_f32_le"]:
            print(f"MISMATCH {case['name']}")
            bad += 1
    n_requant, bad_requant = requant_check()
    print(f"dequant vectors: {len(stored['cases']) - bad} passed, {bad} failed; "
          f"re-quantization vectors: {n_requant - bad_requant} passed, {bad_requant} failed")
    return 1 if bad or bad_requant else 0


if __name__ == "__main__":
    sys.exit(main())
