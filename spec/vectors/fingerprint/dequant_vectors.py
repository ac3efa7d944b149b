#!/usr/bin/env python3
"""Dequantization vectors for spec/fingerprint.md §3, made and checked by the `gguf` package.

`gguf.quants.dequantize` (llama.cpp's own Python reference) decodes every block; the Rust
test `fingerprint_dequant_vectors` decodes the same bytes and must agree bit for bit.

Inputs: for each GGUF type, blocks of random bytes (numpy seed 9) whose f16 scale fields are
replaced by finite random halves, so every code path of the block runs and no NaN appears.
For Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 a second set comes from `gguf.quants.quantize` of a normal sample.

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


def main():
    fresh = make()
    if "--write" in sys.argv:
        with open(PATH, "w") as f:
            json.dump(fresh, f, indent=1)
            f.write("\n")
        print(f"wrote {len(fresh['cases'])} cases")
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
    print(f"dequant vectors: {len(stored['cases']) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
