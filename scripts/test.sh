#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test (unit tests, and the tests that
# drive the built shim against a real SoftHSM2 token they create themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_packages

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --release --quiet -- -D warnings
echo "==> cargo test (release)"
cargo test --workspace --release
