#!/usr/bin/env bash
# bindings/c/ci.sh: build and test the C library (called by .ci/run; runs on its own too).
#
#   bindings/c/ci.sh            # honours CARGO_TARGET_DIR, else target/
#   WS_CI_KEEP=1 bindings/c/ci.sh   # keep the temp folder (fixtures, logs) for a look
#
# Steps: build libweightseal + the weightseal and weightseal-server binaries (debug);
# check include/weightseal.h is fresh; sign fixture copies and write policy files into
# a temp folder; start weightseal-server on 127.0.0.1 and revoke one manifest; compile
# tests/test_weightseal.c with cc -Wall -Werror against the shared library and run it,
# then with one rayon thread, under valgrind, and statically linked; compile and run the
# GGUF example.
# Ends with "N passed, M failed" and exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
lib=$target/debug
# The weightseal and weightseal-server binaries the checks drive: WEIGHTSEAL_BIN_DIR when
# set (.ci/run passes the ones its test stage built, so they are not built once more with
# other features), else built here.
bins=${WEIGHTSEAL_BIN_DIR:-$lib}
CC=${CC:-cc}
passed=0
failed=0
work=$(mktemp -d "${TMPDIR:-/tmp}/weightseal-c.XXXXXX")

cleanup() {
    if [[ -f $work/server.pid ]]; then
        kill "$(cat "$work/server.pid")" 2>/dev/null
        sleep 0.2
    fi
    if [[ -n ${WS_CI_KEEP:-} ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

step() { # step NAME COMMAND...: runs one check, output to $work/NAME.log, shown on failure
    # In a subshell with errexit: any failing command fails the step (a function run in
    # an `if` would ignore set -e).
    local name=$1 rc
    shift
    (
        set -e
        "$@"
    ) >"$work/$name.log" 2>&1
    rc=$?
    if [[ $rc -eq 0 ]]; then
        echo "ok   - $name"
        passed=$((passed + 1))
    else
        echo "FAIL - $name (exit $rc); its output:"
        sed 's/^/    /' "$work/$name.log" | tail -n 60
        failed=$((failed + 1))
    fi
    return $rc
}

finish() {
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit $?
}

build() {
    # Two invocations: --bin filters apply to every -p, and would skip the library.
    cd "$repo" &&
        cargo build -p weightseal-c &&
        if [[ -z ${WEIGHTSEAL_BIN_DIR:-} ]]; then
            cargo build -p weightseal-signer --bin weightseal -p weightseal-server --bin weightseal-server
        fi &&
        test -x "$bins/weightseal" && test -x "$bins/weightseal-server"
}

# The build regenerates the header; a difference from the committed one means it is stale.
header_fresh() {
    cd "$repo" &&
        git ls-files --error-unmatch bindings/c/include/weightseal.h >/dev/null &&
        git diff --exit-code -- bindings/c/include/weightseal.h
}

# The header is usable from C++ (llama.cpp, Ollama's runner) and from strict C99.
header_compiles() {
    printf '#include "weightseal.h"\nint main(void) { return ws_version() == 0; }\n' >"$work/h.c"
    "$CC" -std=c99 -pedantic -Wall -Wextra -Werror -I"$here/include" -fsyntax-only "$work/h.c"
    if command -v c++ >/dev/null; then
        c++ -x c++ -std=c++11 -Wall -Wextra -Werror -I"$here/include" -fsyntax-only "$work/h.c"
    fi
}

ws() { "$bins/weightseal" "$@"; }

gen_fixtures() {
    local fx=$work/fx f
    mkdir -p "$fx/keys" "$fx/ok" "$fx/tampered" "$fx/unsigned" "$fx/revoked"
    for k in lab other second; do ws keygen --out "$fx/keys/$k.key" >/dev/null; done
    cp -r "$repo/tests/fixtures/safetensors/base-model" "$fx/ok/"
    cp "$repo/tests/fixtures/gguf/tiny-llama.gguf" "$fx/ok/"
    cp -r "$repo/tests/fixtures/safetensors/base-model" "$fx/tampered/"
    cp -r "$repo/tests/fixtures/safetensors/base-model" "$fx/unsigned/"
    cp -r "$repo/tests/fixtures/safetensors/base-model" "$fx/revoked/"
    mkdir -p "$fx/nosig" && cp -r "$repo/tests/fixtures/safetensors/base-model" "$fx/nosig/"
    for f in ok/base-model ok/tiny-llama.gguf tampered/base-model unsigned/base-model; do
        ws sign "$fx/$f" --key "$fx/keys/lab.key" >/dev/null
    done
    # Another name, so its manifest (and digest) differs from ok/base-model's.
    ws sign "$fx/revoked/base-model" --key "$fx/keys/lab.key" --name lab/revoked >/dev/null
    # After signing: a file nobody signed beside the weights, and one flipped bit.
    echo 'import os  # not signed' >"$fx/unsigned/base-model/modeling_custom.py"
    python3 - "$fx/tampered/base-model/model-00001-of-00002.safetensors" >"$fx/tampered/TENSOR" <<'EOF'
import json, struct, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    names = sorted(k for k in header if k != "__metadata__")
    name = names[len(names) // 2]           # a tensor in the middle of the file
    start, end = header[name]["data_offsets"]
    at = 8 + n + (start + end) // 2
    f.seek(at)
    b = f.read(1)[0]
    f.seek(at)
    f.write(bytes([b ^ 0x01]))
print(name)
EOF
    policy enforce.toml enforce '"keys/lab.key.pub"' 1
    policy wrongkey.toml enforce '"keys/other.key.pub"' 1
    policy threshold.toml enforce '"keys/lab.key.pub", "keys/second.key.pub"' 2
    policy warn.toml warn '"keys/other.key.pub"' 1
    policy warn-lab.toml warn '"keys/lab.key.pub"' 1
    echo 'mode = "sometimes"' >"$fx/bad.toml"
    policy missingkey.toml enforce '"keys/no-such.key.pub"' 1
}

policy() { # policy FILE MODE KEYS THRESHOLD [REVOCATION-TABLE]
    printf 'mode = "%s"\ntrusted_keys = [%s]\nthreshold = %s\n%s' "$2" "$3" "$4" "${5:-}" >"$work/fx/$1"
}

# A log with a hub issuer, served by weightseal-server on a free port (as
# tests/src/revocation.rs sets it up); the hub revokes revoked/base-model's manifest.
start_server() {
    local fx=$work/fx log=$work/log origin=ci.weightseal.test srv=$bins/weightseal-server
    mkdir -p "$log"
    for k in log hub-issuer lab-issuer; do ws keygen --out "$log/$k.key" >/dev/null; done
    python3 - "$log" "$(ws keygen --out "$log/unused.key" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key_id"])')" <<'EOF'
import json, sys, pathlib
log = pathlib.Path(sys.argv[1])
pem = lambda k: (log / f"{k}.key.pub").read_text()
issuers = {"issuers": [
    {"name": "hub.example", "role": "hub", "public_key": pem("hub-issuer")},
    {"name": "lab.example", "role": "lab", "public_key": pem("lab-issuer"), "signing_keys": [sys.argv[2]]},
]}
(log / "issuers.json").write_text(json.dumps(issuers))
EOF
    local note_key
    note_key=$("$srv" pubkey --origin "$origin" --key "$log/log.key")
    "$srv" serve --listen 127.0.0.1:0 --origin "$origin" --key "$log/log.key" \
        --issuers "$log/issuers.json" --database "sqlite:$log/log.db" \
        >"$log/stdout" 2>"$log/server.log" </dev/null &
    echo $! >"$work/server.pid"
    local url= i
    for i in $(seq 100); do
        url=$(sed -n 's/^listening on //p' "$log/stdout")
        [[ -n $url ]] && break
        sleep 0.1
    done
    [[ -n $url ]] || { cat "$log/server.log"; return 1; }
    ws revoke --server "$url" --key "$log/hub-issuer.key" --revocation-key "$note_key" \
        --manifest "$fx/revoked/base-model/weightseal.sig" --reason guardrails-removed
    local keys='"keys/lab.key.pub"'
    policy revocations.toml enforce "$keys" 1 \
        "$(printf '[revocations]\nsource = "%s"\nlog_key = "%s"\nstate = "state-live"\n' "$url" "$note_key")"
    policy unsigned-models.toml enforce "$keys" 1 "$(printf 'unsigned_models = "check-revocations"\n[revocations]\nsource = "%s"\nlog_key = "%s"\nstate = "state-live"\n' "$url" "$note_key")"
    # Port 1 on loopback: nothing listens, so no status can be established.
    local dead
    dead=$(printf '[revocations]\nsource = "http://127.0.0.1:1"\nlog_key = "%s"\n' "$note_key")
    policy unknown.toml enforce "$keys" 1 "$(printf '%s\nstate = "state-unknown"\n' "$dead")"
    policy warn-unknown.toml warn "$keys" 1 "$(printf '%s\nstate = "state-warn"\n' "$dead")"
}

compile_test() {
    "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I"$here/include" \
        "$here/tests/test_weightseal.c" -o "$work/test_weightseal" \
        -L"$lib" -Wl,-rpath,"$lib" -lweightseal -lpthread
}

compile_static() {
    "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I"$here/include" \
        "$here/tests/test_weightseal.c" -o "$work/test_weightseal_static" \
        "$lib/libweightseal.a" -lpthread -ldl -lm
}

run_test() { "$work/test_weightseal" "$work/fx"; }
run_static() { "$work/test_weightseal_static" "$work/fx"; }
# As .ci/run does for the Rust tests: one rayon thread shakes out deadlocks.
run_one_thread() { RAYON_NUM_THREADS=1 "$work/test_weightseal" "$work/fx"; }

# No invalid access, no definite (or indirect) leak. At exit the threads of rayon's
# global pool are still alive: glibc's per-thread TLS blocks for them (allocate_dtv,
# from pthread_create in rayon_core::registry) show as "possibly lost", as does the
# std thread handle reqwest's blocking client makes once for its runtime thread; Rust's
# one-time runtime allocations are "still reachable". Neither is a leak of ours; the
# summary lines are printed at the end.
run_valgrind() {
    local rc=0
    valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --suppressions="$here/tests/valgrind.supp" --log-file="$work/valgrind.out" \
        "$work/test_weightseal" "$work/fx" || rc=$?
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|Invalid" \
        "$work/valgrind.out" | sed 's/^==[0-9]*== *//' >"$work/valgrind.summary" || true
    [[ $rc -eq 0 ]] || cat "$work/valgrind.out"
    return $rc
}

example() {
    "$CC" -std=c11 -Wall -Wextra -Werror -I"$here/include" "$here/examples/gguf_load.c" \
        -o "$work/gguf_load" -L"$lib" -Wl,-rpath,"$lib" -lweightseal &&
        "$work/gguf_load" "$work/fx/enforce.toml" "$work/fx/ok/tiny-llama.gguf" &&
        ! "$work/gguf_load" "$work/fx/wrongkey.toml" "$work/fx/ok/tiny-llama.gguf"
}

# Nothing else can run without the build or the fixtures.
step build build || finish
step header-fresh header_fresh
step header-compiles header_compiles
step fixtures gen_fixtures || finish
if [[ -n ${WS_SKIP_REVOCATION:-} ]]; then
    echo "skip - server (WS_SKIP_REVOCATION)"
else
    step server start_server
fi
step compile-test compile_test
step test run_test
step test-one-thread run_one_thread
if command -v valgrind >/dev/null; then
    step valgrind run_valgrind
else
    echo "FAIL - valgrind is not installed"
    failed=$((failed + 1))
fi
step compile-static compile_static
step test-static run_static
step example example
for log in test valgrind; do
    [[ -f $work/$log.log ]] && echo "$log: $(tail -n 1 "$work/$log.log")"
done
[[ -f $work/valgrind.summary ]] && sed 's/^/valgrind: /' "$work/valgrind.summary"
finish
