#!/usr/bin/env bash
# The fuzz stage of .ci/run: builds every target in fuzz/ once (nightly, AddressSanitizer,
# debug assertions), then runs each for FUZZ_SECONDS (default 15) from its seed corpus and
# its committed regression inputs, FUZZ_JOBS targets at a time (default: one per core). Fails on any crash, timeout (> 10 s for one input) or
# out-of-memory (> 2 GiB RSS); prints each target's number of executions.
#
#   bash fuzz/ci.sh                    # every target
#   FUZZ_SECONDS=60 bash fuzz/ci.sh manifest bundle
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-15}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "SKIPPED: no nightly toolchain (cargo fuzz needs -Zsanitizer); install one with: rustup toolchain install nightly"
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  started=$SECONDS
  cargo install cargo-fuzz --locked --quiet
  echo "installed cargo-fuzz in $((SECONDS - started)) s"
fi

python3 fuzz/make_corpus.py
started=$SECONDS
# fuzz/ is its own workspace with its own target folder (a sanitizer build shares nothing
# with the stable one).
CARGO_TARGET_DIR="$PWD/fuzz/target" cargo +nightly fuzz build --debug-assertions
echo "built the fuzz targets in $((SECONDS - started)) s"

bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# The harnesses' scratch files (libFuzzer exits without running destructors).
WEIGHTSEAL_FUZZ_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/weightseal-fuzz.XXXXXX")
export WEIGHTSEAL_FUZZ_SCRATCH
trap 'rm -rf "$WEIGHTSEAL_FUZZ_SCRATCH"' EXIT

# One libFuzzer process is one thread: run FUZZ_JOBS targets at once (default: one per
# core), each writing its own log, then report them in order.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
run_target() { # run_target NAME: fuzzes one target; its exit status lands in .../rc
  local t=$1 rc=0
  local dirs=("fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  "$bin_dir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" "${dirs[@]}" >"fuzz/artifacts/$t/run.log" 2>&1 || rc=$?
  echo "$rc" >"fuzz/artifacts/$t/rc"
}
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  rm -f "fuzz/artifacts/$t/rc"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_target "$t" &
done
wait

failed=()
printf '%-20s %12s %10s   (%s at a time)\n' target executions "per s" "$jobs"
for t in "${targets[@]}"; do
  log="fuzz/artifacts/$t/run.log"
  rc=$(cat "fuzz/artifacts/$t/rc" 2>/dev/null || echo "no exit status")
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
  execs=${execs:-0}
  printf '%-20s %12s %10s\n' "$t" "$execs" "$((execs / secs))"
  if [ "$rc" != 0 ]; then
    failed+=("$t")
    echo "---- $t failed (exit $rc); the end of its log ($log):"
    tail -n 40 "$log"
    ls -1 "fuzz/artifacts/$t/" | grep -v -e '^run.log$' -e '^rc$' | sed "s|^|    input: fuzz/artifacts/$t/|" || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (reproduce: fuzz/target/.../release/TARGET INPUT)"
  exit 1
fi
echo "fuzzing: ${#targets[@]} targets ran clean for ${secs} s each"
