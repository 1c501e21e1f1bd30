#!/usr/bin/env bash
# The main job: build the shim, create a SoftHSM2 token, run a realistic pkcs11-tool
# workload through the shim (login, RSA and EC key pairs, an AES key, sign, verify, find,
# set attribute, delete), print the audit summary of the rows it wrote and verify their
# hash chains.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_packages

echo "==> building (release)"
cargo build --release --quiet -p pkcs11-shim -p normalizer

work=target/quickstart
rm -rf "$work"
mkdir -p "$work/tokens" "$work/rows"
export SOFTHSM2_CONF="$PWD/$work/softhsm2.conf"
echo "directories.tokendir = $PWD/$work/tokens" >"$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label quickstart --pin 1234 --so-pin 12345678 >/dev/null

# What an application does: point its PKCS#11 module path at the shim, tell the shim
# where the vendor module is and where rows go.
shim="$PWD/target/release/libhsm_audit_pkcs11.so"
export HSM_AUDIT_MODULE=/usr/lib/softhsm/libsofthsm2.so
export HSM_AUDIT_OUTPUT="$PWD/$work/rows"
export HSM_AUDIT_HSM_INSTANCE=quickstart-hsm
export HSM_AUDIT_CLUSTER_TYPE=SoftHSM2

p11() { pkcs11-tool --module "$shim" --token-label quickstart "$@"; }
login=(--login --pin 1234)
echo "==> workload through the shim ($shim)"
p11 --list-slots >/dev/null
p11 "${login[@]}" --keypairgen --key-type rsa:2048 --label app-rsa --id 01 >/dev/null
p11 "${login[@]}" --keypairgen --key-type EC:prime256v1 --label app-ec --id 02 >/dev/null
p11 "${login[@]}" --keygen --key-type AES:32 --label app-aes --id 03 >/dev/null
head -c 1000 /dev/urandom >"$work/data"
p11 "${login[@]}" --sign --mechanism SHA256-RSA-PKCS --id 01 -i "$work/data" -o "$work/rsa.sig" >/dev/null
p11 "${login[@]}" --verify --mechanism SHA256-RSA-PKCS --id 01 -i "$work/data" --signature-file "$work/rsa.sig" >/dev/null
# SoftHSM 2.6 has no CKM_ECDSA_SHA256: hash in the HSM, then sign the digest with CKM_ECDSA.
p11 --hash --mechanism SHA256 -i "$work/data" -o "$work/data.sha256" >/dev/null
p11 "${login[@]}" --sign --mechanism ECDSA --id 02 -i "$work/data.sha256" -o "$work/ec.sig" >/dev/null
p11 "${login[@]}" --verify --mechanism ECDSA --id 02 -i "$work/data.sha256" --signature-file "$work/ec.sig" >/dev/null
p11 "${login[@]}" --list-objects >/dev/null
p11 "${login[@]}" --set-id 04 --id 03 --type secrkey >/dev/null
p11 --login --pin 0000 --list-objects >/dev/null 2>&1 || true # a wrong PIN, to show a failure
p11 "${login[@]}" --delete-object --type secrkey --id 04 >/dev/null
p11 "${login[@]}" --delete-object --type privkey --id 02 >/dev/null

echo "==> rows written to $HSM_AUDIT_OUTPUT:"
ls -1 "$HSM_AUDIT_OUTPUT"
echo
target/release/hsm-audit summary "$HSM_AUDIT_OUTPUT"
echo
echo "==> hash chains of the rows (hsm-audit verify)"
target/release/hsm-audit verify "$HSM_AUDIT_OUTPUT"
