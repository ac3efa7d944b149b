#!/usr/bin/env bash
# bindings/c/bench/bench.sh: the C loop over all tensors through ws_model_read_tensor
# against the reference "plain pread of the same bytes + b3sum of the file".
#
#   bindings/c/bench/bench.sh [ROUNDS]     # default 7; honours CARGO_TARGET_DIR
#
# One 2 GiB safetensors file (16 tensors of 128 MiB) is written and signed in a temp
# folder and read twice to put it in the page cache. Each round runs, in turn: the C loop
# (open + every tensor read and checked), the pread loop (whole file, 128 MiB reads, one
# buffer per read like the C loop), and b3sum of the file. Reported: medians of the
# process wall times and the ratio C / (pread + b3sum); the target is <= 1.10.
# Needs b3sum (`cargo install b3sum`) and ~2.5 GiB of free memory.
set -euo pipefail
rounds=${1:-7}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
rel=$target/release
command -v b3sum >/dev/null || { echo "b3sum not found: cargo install b3sum" >&2; exit 2; }

# Two invocations: a --bin filter applies to every -p, and would skip the library.
(cd "$repo" && cargo build --release -q -p weightseal-c && cargo build --release -q -p weightseal-signer --bin weightseal)
work=$(mktemp -d "${TMPDIR:-/tmp}/weightseal-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -Wall -Werror -I"$here/../include" "$here/bench_read.c" -o "$work/bench_read" \
    -L"$rel" -Wl,-rpath,"$rel" -lweightseal

model=$work/model.safetensors
python3 - "$model" <<'PY'
import json, os, struct, sys
n, rows, cols = 16, 32768, 1024          # 16 x 128 MiB of F32
size = rows * cols * 4
header = {f"layers.{i}.weight": {"dtype": "F32", "shape": [rows, cols],
          "data_offsets": [i * size, (i + 1) * size]} for i in range(n)}
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    block = os.urandom(64 << 20)
    for i in range(n * size // len(block)):
        f.write(block[: len(block) - 1] + bytes([i % 256]))
PY
"$rel/weightseal" keygen --out "$work/lab.key" >/dev/null
"$rel/weightseal" sign "$model" --key "$work/lab.key" >/dev/null
printf 'mode = "enforce"\ntrusted_keys = ["lab.key.pub"]\nthreshold = 1\n' >"$work/policy.toml"
cat "$model" >/dev/null
cat "$model" >/dev/null

wall() { # wall CMD...: prints the command's wall time in seconds
    local t0=$EPOCHREALTIME
    "$@" >/dev/null
    local t1=$EPOCHREALTIME
    echo "$t1 - $t0" | bc -l
}
: >"$work/times"
for r in $(seq "$rounds"); do
    c=$(wall "$work/bench_read" ws "$work/policy.toml" "$model")
    p=$(wall "$work/bench_read" pread "$model" $((128 << 20)))
    b=$(wall b3sum "$model")
    echo "$c $p $b" >>"$work/times"
    printf 'round %d: C loop %.3fs  pread %.3fs  b3sum %.3fs\n' "$r" "$c" "$p" "$b"
done
python3 - "$work/times" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
c, p, b = (statistics.median(col) for col in zip(*rows))
ref = statistics.median(r[1] + r[2] for r in rows)
print(f"medians: C loop {c:.3f}s ({2/c:.2f} GiB/s), pread {p:.3f}s, b3sum {b:.3f}s, "
      f"pread+b3sum {ref:.3f}s")
print(f"ratio C loop / (pread + b3sum) = {c/ref:.3f}  (target <= 1.10)")
PY
echo "load: $(uptime)"
