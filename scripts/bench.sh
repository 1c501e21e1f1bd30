#!/usr/bin/env bash
# The performance benchmark, in one command:
#   scripts/bench.sh [p11-bench options, e.g. --rounds 7 --secs 2]
# Installs SoftHSM2 and OpenSC (pkcs11-spy) if missing, builds the shim and p11-bench in
# release mode, runs p11-bench (throughput vs SoftHSM2 direct and pkcs11-spy, memory burst,
# row latency) and then the normalizer's criterion microbenchmark.
# Results: target/bench/results.md, results.json, ratios.svg (OUT=dir to change).
# NORMALIZER_BENCH=0 skips the criterion run.
set -euo pipefail
cd "$(dirname "$0")/.."

spy_module() { ls /usr/lib/*/pkcs11-spy.so /usr/lib/pkcs11-spy.so 2>/dev/null | head -n1 || true; }
need=()
[ -e "${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}" ] || need+=(softhsm2)
[ -n "$(spy_module)" ] || need+=(opensc)
if ((${#need[@]})); then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Two builds: `--bin` would otherwise filter out the shim's cdylib.
cargo build --release -p pkcs11-shim
cargo build --release -p softhsm-tests --bin p11-bench
HSM_AUDIT_SHIM="$CARGO_TARGET_DIR/release/libhsm_audit_pkcs11.so" \
    "$CARGO_TARGET_DIR/release/p11-bench" --spy "$(spy_module)" --out "${OUT:-target/bench}" "$@"

if [ "${NORMALIZER_BENCH:-1}" = 1 ]; then
    cargo bench -p normalizer --bench normalizer
fi
