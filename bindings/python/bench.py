"""Benchmark: checked loading against the plain load plus one BLAKE3 pass.

    python bindings/python/bench.py [--dir /tmp/weightseal-bench] [--rounds 5]

Makes (once) a 2 GiB safetensors file of 16 tensors of 128 MiB, signs it with the
`weightseal` CLI, reads it into the page cache, then runs interleaved rounds of:

* ``weightseal.load_file``            (reads every tensor into its array, checked as read)
* ``safetensors.numpy.load_file``     (the plain load)
* ``b3sum FILE``                      (one BLAKE3 pass over the same file)
* ``weightseal.safe_open`` + ``get_tensor`` of one tensor of the 16
* ``safetensors.safe_open`` + ``get_tensor`` of the same tensor

and prints the medians. Checking costs one BLAKE3 pass, so the reference for
``load_file`` is plain load + b3sum measured in the same run: the target is at most
1.10x. One tensor's cost must follow the bytes read (1/16 of the file), not the file.

Needs: the wheel installed (``pip install ./bindings/python``), ``safetensors``, a
``weightseal`` binary (``--bin``, or target/release, target/debug, PATH) and ``b3sum``
(``cargo install b3sum``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import safetensors
import safetensors.numpy

import weightseal

TENSORS = 16
TENSOR_BYTES = 128 << 20
ROOT = Path(__file__).resolve().parents[2]


def find_program(name: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for candidate in (target / "release" / name, target / "debug" / name):
        if candidate.exists():
            return str(candidate)
    cargo_bin = str(Path.home() / ".cargo" / "bin")
    found = shutil.which(name) or shutil.which(name, path=cargo_bin)
    if not found and name == "b3sum":
        print("bench: b3sum not found; cargo install b3sum ...", flush=True)
        subprocess.run(["cargo", "install", "--quiet", "b3sum"], check=True)
        found = shutil.which(name, path=cargo_bin)
    if not found:
        sys.exit(f"bench: {name} not found (cargo build --bins, or cargo install b3sum)")
    return found


def write_model(folder: Path) -> Path:
    """Writes the 2 GiB file by streaming (header, then each tensor), in safetensors
    layout: 8-byte little-endian header length, JSON header padded to 8, data."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    n = TENSOR_BYTES // 4
    header: Dict[str, object] = {"__metadata__": {"format": "np"}}
    for i in range(TENSORS):
        header[f"layer.{i:02d}.weight"] = {
            "dtype": "F32",
            "shape": [n // 1024, 1024],
            "data_offsets": [i * TENSOR_BYTES, (i + 1) * TENSOR_BYTES],
        }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for i in range(TENSORS):
            a = np.arange(n, dtype=np.float32)
            a *= np.float32(1.0 + i / 16)
            f.write(a.tobytes())
    return path


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - t
    del result
    gc.collect()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/weightseal-bench", help="where the 2 GiB case lives (reused)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bin", help="the weightseal CLI")
    ap.add_argument("--b3sum", help="the b3sum program")
    args = ap.parse_args()

    ws_bin = find_program("weightseal", args.bin)
    b3sum = find_program("b3sum", args.b3sum)
    folder = Path(args.dir)
    model = folder / "model" / "model.safetensors"
    key = folder / "bench.key"
    if not model.exists() or model.stat().st_size < TENSORS * TENSOR_BYTES:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"writing {TENSORS} x {TENSOR_BYTES >> 20} MiB to {model} ...", flush=True)
        write_model(model.parent)
        subprocess.run([ws_bin, "keygen", "--out", str(key)], check=True, capture_output=True)
        subprocess.run([ws_bin, "sign", str(model.parent), "--key", str(key)], check=True, capture_output=True)
    policy = weightseal.Policy(trusted_keys=[str(key) + ".pub"])
    size = model.stat().st_size
    one = f"layer.{TENSORS // 2:02d}.weight"

    # Page cache: read the whole file once (and once more through each loader).
    with open(model, "rb") as f:
        while f.read(64 << 20):
            pass

    def b3() -> None:
        subprocess.run([b3sum, "--no-names", str(model)], check=True, stdout=subprocess.DEVNULL)

    def ws_one() -> object:
        with weightseal.safe_open(model, policy=policy) as f:
            return f.get_tensor(one)

    def st_one() -> object:
        with safetensors.safe_open(model, framework="np") as f:
            return f.get_tensor(one)

    cases: Dict[str, Callable[[], object]] = {
        "weightseal.load_file": lambda: weightseal.load_file(model, policy=policy),
        "safetensors.numpy.load_file": lambda: safetensors.numpy.load_file(model),
        "b3sum": b3,
        "weightseal.safe_open+get_tensor(1 of 16)": ws_one,
        "safetensors.safe_open+get_tensor(1 of 16)": st_one,
    }
    # Correctness first: the two loaders agree on the bench file.
    a, b = weightseal.load_file(model, policy=policy), safetensors.numpy.load_file(model)
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in b), "loaders disagree"
    del a, b
    for fn in cases.values():  # one warm-up round
        timed(fn)

    times: Dict[str, List[float]] = {k: [] for k in cases}
    for r in range(args.rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))  # interleaved, both orders
        for name in order:
            times[name].append(timed(cases[name]))

    med = {k: statistics.median(v) for k, v in times.items()}
    gib = size / (1 << 30)
    print(f"file: {model} ({gib:.2f} GiB, {TENSORS} tensors), {args.rounds} interleaved rounds, medians:")
    for name, t in med.items():
        print(f"  {name:45s} {t * 1e3:9.1f} ms  ({gib / t:6.2f} GiB/s)" if "1 of 16" not in name
              else f"  {name:45s} {t * 1e3:9.1f} ms")
    ref = med["safetensors.numpy.load_file"] + med["b3sum"]
    ratio = med["weightseal.load_file"] / ref
    print(f"weightseal.load_file / (safetensors.numpy.load_file + b3sum) = {ratio:.3f}  (target <= 1.10)")
    print(
        "one tensor: weightseal {:.1f} ms, safetensors {:.1f} ms; full checked load {:.1f} ms".format(
            med["weightseal.safe_open+get_tensor(1 of 16)"] * 1e3,
            med["safetensors.safe_open+get_tensor(1 of 16)"] * 1e3,
            med["weightseal.load_file"] * 1e3,
        )
    )
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
