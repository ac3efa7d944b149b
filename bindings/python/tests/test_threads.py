"""The GIL is released while reading and hashing: two threads verifying at once overlap.

Measured as overlap, not against a time budget. Two workers verify their own model at
the same moment (a barrier per round) and record when their call started and ended; an
observer thread records every pause in its own progress longer than 1 ms. For each round:

* the two calls overlap (the intersection is most of the shorter call), and
* inside that intersection the observer never paused for long (its longest pause is a
  small fraction of the intersection).

If the native code held the GIL, the recorded calls could still overlap (one worker
waiting for the GIL inside its call while the other hashes), but then no Python thread
could run while a call is hashing, so the observer's longest pause would span a whole
call. Both measures are ratios of times measured in the same round, so a slow or busy
machine does not change the verdict. (Checked by building the module with the GIL held
in `verify`: the calls still "overlap", but the longest pause equals the overlap, e.g.
"overlap 45 ms of 45 ms, longest pause 45 ms", and the test fails.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np
import safetensors.numpy

import weightseal
from conftest import keygen, sign

ROUNDS = 3


def make_model(folder: Path, mib: int, seed: int) -> None:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    n = mib * (1 << 20) // 4 // 4
    tensors = {f"t{i}": rng.random(n, dtype=np.float32) for i in range(4)}
    safetensors.numpy.save_file(tensors, str(folder / "model.safetensors"))


def test_two_threads_verifying_at_once_run_in_parallel(tmp_path: Path) -> None:
    key = keygen(tmp_path, "k")
    models = [tmp_path / "a", tmp_path / "b"]
    for i, m in enumerate(models):
        make_model(m, 96, seed=i)
        sign(m, key)
    policy = weightseal.Policy(trusted_keys=[key.public])
    for m in models:  # warm the page cache: the rounds measure hashing, not the disk
        weightseal.verify(m, policy=policy)

    calls: List[List[Tuple[float, float]]] = [[], []]
    barrier = threading.Barrier(2)
    errors: list = []

    def worker(i: int) -> None:
        try:
            for _ in range(ROUNDS):
                barrier.wait()
                s = time.perf_counter()
                weightseal.verify(models[i], policy=policy)
                calls[i].append((s, time.perf_counter()))
        except Exception as e:  # re-raised below, in the test's thread
            errors.append(e)
            barrier.abort()

    pauses: List[Tuple[float, float]] = []
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    last = time.perf_counter()
    while any(t.is_alive() for t in threads):
        now = time.perf_counter()
        if now - last > 0.001:
            pauses.append((last, now))
        last = now
    for t in threads:
        t.join()
    assert not errors, errors

    good = 0
    report = []
    for (a0, a1), (b0, b1) in zip(calls[0], calls[1]):
        w0, w1 = max(a0, b0), min(a1, b1)
        overlap = max(0.0, w1 - w0)
        shorter = min(a1 - a0, b1 - b0)
        longest_pause = max((min(p1, w1) - max(p0, w0) for p0, p1 in pauses), default=0.0)
        longest_pause = max(0.0, longest_pause)
        report.append(f"overlap {overlap * 1e3:.0f} ms of {shorter * 1e3:.0f} ms, longest pause {longest_pause * 1e3:.0f} ms")
        if overlap >= 0.5 * shorter and longest_pause <= 0.25 * overlap:
            good += 1
    assert good >= ROUNDS - 1, "; ".join(report)
