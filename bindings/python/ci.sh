#!/usr/bin/env bash
# CI for the Python package: builds the wheel with maturin into a fresh venv, builds the
# binaries the tests drive (the `weightseal` CLI signs fixtures, `weightseal-server` serves
# revocations), and runs the pytest suite. Exits non-zero on any failure.
#
#   bash bindings/python/ci.sh
#
# The wheel is built with the dev profile: the workspace builds every dependency (BLAKE3
# included) at opt-level 3 even there, and it shares artifacts with `cargo build --bins`,
# which keeps this to a few minutes on 2 cores. The benchmark (bench.py) wants --release.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${WEIGHTSEAL_PY_VENV:-/tmp/weightseal-py-venv}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TARGET_DIR="$TARGET"
START=$SECONDS

echo "== python: venv $VENV (maturin, numpy, safetensors, pytest)"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check maturin numpy safetensors pytest

# WEIGHTSEAL_BIN_DIR, when set, holds binaries already built (.ci/run passes the ones its
# test stage built, so they are not built once more with other features).
if [ -n "${WEIGHTSEAL_BIN_DIR:-}" ]; then
  BIN_DIR="$WEIGHTSEAL_BIN_DIR"
  echo "== python: binaries the tests drive, from $BIN_DIR"
else
  BIN_DIR="$TARGET/debug"
  echo "== python: binaries the tests drive (weightseal, weightseal-server)"
  (cd "$ROOT" && cargo build --quiet -p weightseal-signer -p weightseal-server --bins)
fi
for bin in weightseal weightseal-server; do
  [ -x "$BIN_DIR/$bin" ] || { echo "python package: no $bin binary in $BIN_DIR"; exit 1; }
done

echo "== python: wheel (maturin, abi3)"
WHEELS="$(mktemp -d /tmp/weightseal-wheels.XXXXXX)"
trap 'rm -rf "$WHEELS"' EXIT
"$VENV/bin/maturin" build --quiet --profile dev -m "$HERE/Cargo.toml" -i "$VENV/bin/python" --out "$WHEELS"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEELS"/weightseal-*.whl

echo "== python: tests"
cd "$HERE"
status=0
WEIGHTSEAL_BIN_DIR="$BIN_DIR" "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider || status=$?
if [ "$status" -ne 0 ]; then
  echo "python package: TESTS FAILED (pytest exit $status) after $((SECONDS - START)) s"
  exit "$status"
fi
echo "python package: all tests passed in $((SECONDS - START)) s"
