#!/usr/bin/env bash
# Conformance: real PKCS#11 clients run their own test suites twice, directly on SoftHSM2
# and through the shim, each time on a fresh token; the two pass/fail sets must be equal.
#
#   cryptoki     the `cryptoki` crate's (0.12.1) own tests, as its upstream CI runs them
#   pkcs11-tool  OpenSC's --test, --test-ec, --test-fork and a key lifecycle (generate,
#                sign, verify, encrypt, decrypt, objects, PIN change); outputs compared too
#   p11tool      GnuTLS p11tool: list, generate, test-sign, export, delete; outputs too
#
# Through the shim every row must also parse and there must be rows. Prints a markdown
# table (also in summary.md); exits 1 on any difference. Everything it builds and writes
# is under $CARGO_TARGET_DIR/conformance/PROFILE.
#
#   scripts/conformance.sh [--release] [SUITE...]   (SUITE: cryptoki, pkcs11-tool, p11tool)
#
# --release builds the shim and cryptoki's tests in release mode; HSM_AUDIT_SHIM names an
# already built shim instead.
set -euo pipefail
export LC_ALL=C # sort and join must agree on one order
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

CRYPTOKI_VERSION=0.12.1
PIN=1234
SO_PIN=12345678
# cryptoki's tests use these (tests/common/mod.rs); its CI creates the token with them.
CRYPTOKI_PIN=fedcba123456
CRYPTOKI_SO_PIN=abcdef654321

profile=debug
cargo_profile=()
suites=()
for arg in "$@"; do
  case "$arg" in
    --release) profile=release cargo_profile=(--release) ;;
    cryptoki | pkcs11-tool | p11tool) suites+=("$arg") ;;
    *) echo "usage: $0 [--release] [cryptoki|pkcs11-tool|p11tool]..." >&2; exit 2 ;;
  esac
done
[ "${#suites[@]}" -gt 0 ] || suites=(cryptoki pkcs11-tool p11tool)

# --- prerequisites -------------------------------------------------------------------------

need_packages
missing=()
command -v p11tool >/dev/null 2>&1 || missing+=(gnutls-bin)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n" # never wait for a password (e.g. under cargo test)
  echo "==> installing ${missing[*]} (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
work="$CARGO_TARGET_DIR/conformance/$profile" # a debug and a release run may overlap
mkdir -p "$work"
softhsm=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

shim=${HSM_AUDIT_SHIM:-}
if [ -z "$shim" ]; then
  echo "==> cargo build -p pkcs11-shim ($profile)"
  cargo build --quiet "${cargo_profile[@]}" -p pkcs11-shim
  shim="$CARGO_TARGET_DIR/$profile/libhsm_audit_pkcs11.so"
fi
[ -e "$shim" ] || { echo "shim $shim not found" >&2; exit 1; }

# The developer's own shim and test settings must not leak into either run.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^HSM_AUDIT_' || true)
unset TEST_PKCS11_MODULE TEST_PRETEND_LIBRARY GNUTLS_PIN GNUTLS_SO_PIN

# --- helpers -------------------------------------------------------------------------------

# module SIDE: the module a client loads on that side.
module() { if [ "$1" = direct ]; then echo "$softhsm"; else echo "$shim"; fi; }

# fresh DIR: an empty SoftHSM token directory with its config, and a row directory.
# Exports the environment of a run in DIR (the caller runs in a subshell).
fresh() {
  rm -rf "$1"
  mkdir -p "$1/tokens" "$1/rows"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$1/tokens" >"$1/softhsm2.conf"
  : >"$1/hsm-audit.toml" # empty: a host's /etc/hsm-audit/hsm-audit.toml never applies
  export SOFTHSM2_CONF="$1/softhsm2.conf" HSM_AUDIT_CONFIG="$1/hsm-audit.toml"
  export HSM_AUDIT_MODULE="$softhsm" HSM_AUDIT_OUTPUT="$1/rows"
}

# check_rows DIR: every line of every row file is a JSON object naming its function;
# prints the row count, fails when a line does not parse or there are none.
check_rows() {
  local files=("$1"/rows/*.jsonl) lines valid
  [ -e "${files[0]}" ] || { echo 0; return 1; }
  lines=$(cat "${files[@]}" | wc -l)
  valid=$(cat "${files[@]}" | jq -R -n '[inputs | fromjson | .Pkcs11Function | strings] | length') ||
    { echo 0; return 1; }
  echo "$valid"
  [ "$valid" -gt 0 ] && [ "$valid" = "$lines" ]
}

# cryptoki_source: cryptoki's crate source, fetched by cargo (no extra tools) and copied to
# $work/cryptoki as a stand-alone package.
cryptoki_source() {
  local dir="$work/cryptoki"
  [ -f "$dir/.version-$CRYPTOKI_VERSION" ] && return 0
  mkdir -p "$work/fetch/src"
  printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[workspace]\n\n[dependencies]\ncryptoki = "=%s"\n' \
    "$CRYPTOKI_VERSION" >"$work/fetch/Cargo.toml"
  : >"$work/fetch/src/lib.rs"
  local manifest
  manifest=$(cargo metadata --quiet --format-version 1 --manifest-path "$work/fetch/Cargo.toml" |
    grep -o "\"manifest_path\":\"[^\"]*/cryptoki-$CRYPTOKI_VERSION/Cargo.toml\"" | head -n1 |
    sed 's/^"manifest_path":"//; s/"$//')
  [ -n "$manifest" ] || { echo "cannot locate cryptoki $CRYPTOKI_VERSION source" >&2; return 1; }
  rm -rf "$dir"
  cp -r "$(dirname "$manifest")" "$dir"
  chmod -R u+w "$dir"
  # Not a member of our workspace (it lives under target/): its own workspace root.
  printf '\n[workspace]\n' >>"$dir/Cargo.toml"
  touch "$dir/.version-$CRYPTOKI_VERSION"
}

# libtest_results LOG: "binary::test<TAB>outcome" for every test line of a cargo test log.
libtest_results() {
  awk '
    /^ +Running / { bin = $0; sub(/^ +Running /, "", bin); sub(/ \(.*$/, "", bin) }
    /^ +Doc-tests / { bin = "doc-tests" }
    /^test .* \.\.\. / {
      name = $0; sub(/^test /, "", name); sub(/ \.\.\. .*$/, "", name)
      outcome = $0; sub(/^.* \.\.\. /, "", outcome); sub(/,.*$/, "", outcome)
      print bin "::" name "\t" outcome
    }' "$1" | sort -t $'\t' -k1,1
}

# --- suites --------------------------------------------------------------------------------
# Each suite writes $work/SUITE/SIDE/results: "name<TAB>outcome" lines, where "ok" passes.

suite_cryptoki() {
  cryptoki_source
  echo "==> cryptoki $CRYPTOKI_VERSION: building its tests ($profile)"
  (cd "$work/cryptoki" && cargo test --quiet --locked "${cargo_profile[@]}" --no-run)
  local side dir
  for side in direct shim; do
    dir="$work/cryptoki-run/$side"
    echo "==> cryptoki $CRYPTOKI_VERSION tests: $side"
    (
      fresh "$dir"
      # As upstream CI: one token initialised up front; the tests re-initialise it.
      softhsm2-util --init-token --slot 0 --label "Test Token" \
        --so-pin "$CRYPTOKI_SO_PIN" --pin "$CRYPTOKI_PIN" >/dev/null
      export TEST_PKCS11_MODULE
      TEST_PKCS11_MODULE=$(module "$side")
      # Through the shim, behave as the tests do for SoftHSM (tests/common/mod.rs).
      [ "$side" = shim ] && export TEST_PRETEND_LIBRARY=softhsm
      cd "$work/cryptoki"
      cargo test --locked "${cargo_profile[@]}" --no-fail-fast >"$dir/log" 2>&1 || true
    )
    libtest_results "$dir/log" >"$dir/results"
  done
}

# p11 STEP ARGS...: runs pkcs11-tool with ARGS, recording its outcome and normalised output.
p11() {
  local step=$1 rc=0
  shift
  pkcs11-tool --module "$mod" "$@" >"$dir/out/$step" 2>&1 || rc=$?
  normalise <"$dir/out/$step" >"$dir/norm/$step"
  outcome "$step" "$rc"
}

# outcome STEP RC: one results line ("ok" or "FAILED rc=N").
outcome() {
  if [ "$2" = 0 ]; then
    printf '%s\tok\n' "$1" >>"$dir/results"
  else
    printf '%s\tFAILED rc=%s\n' "$1" "$2" >>"$dir/results"
  fi
}

# Masks what differs between any two fresh tokens (slot ids, serials, generated key
# material, key ids derived from it, object numbers), then sorts the output's blocks (a
# line and the indented lines after it): SoftHSM lists objects in random order.
normalise() {
  sed -E \
    -e 's/0x[0-9a-f]{6,}/0xSLOT/g' \
    -e 's/(serial num *: |Serial: ).*/\1SERIAL/' \
    -e 's/(serial=)[0-9a-f]+/\1SERIAL/g' \
    -e 's/(EC_POINT: +)[0-9a-f]+/\1POINT/' \
    -e 's/(id=)(%[0-9A-F]{2})+/\1ID/g' \
    -e 's/(ID: +)([0-9a-f]{2}:)+[0-9a-f]{2}$/\1ID/' \
    -e '/^-----BEGIN/,/^-----END/{/^-----/!s/.*/BASE64/}' \
    -e 's/^(Object|Data object) [0-9]+/\1 N/' |
    awk '/^[^ \t]/ && NR > 1 { print block; block = "" }
      { block = block (block == "" ? "" : "\001") $0 }
      END { if (NR) print block }' | sort | tr '\001' '\n'
}

suite_pkcs11_tool() {
  local side dir mod iv=000102030405060708090a0b0c0d0e0f
  for side in direct shim; do
    dir="$work/pkcs11-tool/$side"
    mod=$(module "$side")
    echo "==> pkcs11-tool: $side"
    (
      fresh "$dir"
      mkdir -p "$dir/out" "$dir/norm" "$dir/files"
      : >"$dir/results"
      f="$dir/files"
      echo "conformance data" >"$f/data"
      t=(--token-label conf)
      u=("${t[@]}" --login --pin "$PIN")
      p11 init-token --init-token --slot-index 0 --label conf --so-pin "$SO_PIN"
      p11 init-pin "${t[@]}" --login --login-type so --so-pin "$SO_PIN" --init-pin --pin "$PIN"
      p11 show-info --show-info
      p11 list-slots --list-slots
      p11 list-mechanisms "${t[@]}" --list-mechanisms
      p11 test-empty-token "${u[@]}" --test
      # --test exercises the first private key it finds most, and SoftHSM's order is
      # random: each --test below runs with exactly one private key on the token.
      p11 keypairgen-rsa-1 "${u[@]}" --keypairgen --key-type rsa:2048 --id 01 --label rsa
      # SoftHSM 2.6 rejects OAEP with a label: this aborts at the same place both ways.
      p11 test-rsa-key "${u[@]}" --test
      p11 delete-privkey "${u[@]}" --delete-object --type privkey --id 01
      p11 delete-pubkey "${u[@]}" --delete-object --type pubkey --id 01
      p11 keypairgen-ec "${u[@]}" --keypairgen --key-type EC:prime256v1 --id 02 --label ec \
        --usage-sign --usage-derive
      p11 test-ec-key "${u[@]}" --test
      p11 keypairgen-rsa-2 "${u[@]}" --keypairgen --key-type rsa:2048 --id 01 --label rsa \
        --usage-sign
      p11 keygen-aes "${u[@]}" --keygen --key-type AES:32 --id 03 --label aes --usage-decrypt
      p11 list-objects "${u[@]}" --list-objects
      p11 hash "${t[@]}" --hash -m SHA256 -i "$f/data" -o "$f/hash"
      od -An -tx1 "$f/hash" >>"$dir/norm/hash"
      p11 sign-rsa "${u[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i "$f/data" -o "$f/sig-rsa"
      p11 verify-rsa "${t[@]}" --verify -m SHA256-RSA-PKCS --id 01 -i "$f/data" \
        --signature-file "$f/sig-rsa"
      p11 sign-ec "${u[@]}" --sign -m ECDSA --id 02 -i "$f/hash" -o "$f/sig-ec"
      p11 verify-ec "${t[@]}" --verify -m ECDSA --id 02 -i "$f/hash" --signature-file "$f/sig-ec"
      p11 verify-ec-wrong-data "${t[@]}" --verify -m ECDSA --id 02 -i "$f/data" \
        --signature-file "$f/sig-ec"
      p11 encrypt-aes "${u[@]}" --encrypt -m AES-CBC-PAD --iv "$iv" --id 03 -i "$f/data" \
        -o "$f/ct"
      p11 decrypt-aes "${u[@]}" --decrypt -m AES-CBC-PAD --iv "$iv" --id 03 -i "$f/ct" \
        -o "$f/pt"
      if cmp -s "$f/data" "$f/pt"; then outcome aes-roundtrip 0; else outcome aes-roundtrip 1; fi
      p11 write-data "${u[@]}" --write-object "$f/data" --type data --label note
      p11 read-data "${u[@]}" --read-object --type data --label note
      p11 read-pubkey "${t[@]}" --read-object --type pubkey --id 01 -o "$f/pub.der"
      p11 delete-secret "${u[@]}" --delete-object --type secrkey --id 03
      # Generates its own key; its last step (ECDSA-SHA1) SoftHSM 2.6 lacks.
      p11 test-ec "${u[@]}" --session-rw --test-ec --id 04 --key-type EC:secp384r1
      p11 wrong-pin "${t[@]}" --login --pin 0000 --list-objects
      p11 change-pin "${u[@]}" --change-pin --new-pin 4321
      p11 new-pin "${t[@]}" --login --pin 4321 --list-objects
      p11 test-fork --test-fork
      # Not run: --test-threads. Its threads call the module before and while the main
      # thread runs C_Initialize, and SoftHSM 2.6 is not safe against that: it crashes
      # directly too (5 in 300 runs of GISLT0 x2; half the runs of OpenSC's own IN/IL).
    )
    sort -t $'\t' -k1,1 -o "$dir/results" "$dir/results"
  done
}

suite_p11tool() {
  local side dir mod
  for side in direct shim; do
    dir="$work/p11tool/$side"
    mod=$(module "$side")
    echo "==> p11tool: $side"
    (
      fresh "$dir"
      mkdir -p "$dir/out" "$dir/norm"
      : >"$dir/results"
      softhsm2-util --init-token --free --label conf --so-pin "$SO_PIN" --pin "$PIN" >/dev/null
      export GNUTLS_PIN=$PIN GNUTLS_SO_PIN=$SO_PIN
      tok="pkcs11:token=conf"
      run() {
        local step=$1 rc=0
        shift
        p11tool --provider "$mod" "$@" >"$dir/out/$step" 2>&1 || rc=$?
        normalise <"$dir/out/$step" >"$dir/norm/$step"
        outcome "$step" "$rc"
      }
      run list-tokens --list-tokens
      run list-mechanisms --list-mechanisms "$tok"
      run generate-ec --login --generate-privkey ECDSA --curve secp256r1 --label gt-ec "$tok"
      run generate-rsa --login --generate-privkey RSA --bits 2048 --label gt-rsa "$tok"
      run list-privkeys --login --list-privkeys "$tok"
      run list-all --login --list-all "$tok"
      run test-sign-ec --login --test-sign "$tok;object=gt-ec;type=private"
      run test-sign-rsa --login --test-sign "$tok;object=gt-rsa;type=private"
      run export-pubkey --login --export-pubkey "$tok;object=gt-ec;type=public"
      # The key read back is the one generated (the PEM is masked in the comparison).
      if cmp -s <(grep -v '^warning' "$dir/out/generate-ec" | sed -n '/BEGIN/,/END/p') \
        <(sed -n '/BEGIN/,/END/p' "$dir/out/export-pubkey"); then
        outcome export-matches-generated 0
      else
        outcome export-matches-generated 1
      fi
      run delete --login --batch --delete "$tok;object=gt-rsa"
      run list-after-delete --login --list-all "$tok"
    )
    sort -t $'\t' -k1,1 -o "$dir/results" "$dir/results"
  done
}

# --- comparison ----------------------------------------------------------------------------

table=("| suite | tests | pass direct | pass via shim | rows via shim | differences |"
  "|---|---:|---:|---:|---:|---|")
failed=0

# compare SUITE DIR: the table row, and each difference on stderr.
compare() {
  local suite=$1 d=$2/direct s=$2/shim tests pd ps rows diffs=0 notes=()
  tests=$(cut -f1 "$d/results" "$s/results" | sort -u | wc -l)
  pd=$(grep -c $'\tok$' "$d/results" || true)
  ps=$(grep -c $'\tok$' "$s/results" || true)
  if [ "$tests" = 0 ]; then
    notes+=("no tests ran")
    diffs=1
  fi
  local changed
  changed=$(join -t $'\t' -a1 -a2 -e absent -o 0,1.2,2.2 "$d/results" "$s/results" |
    awk -F'\t' '$2 != $3')
  if [ -n "$changed" ]; then
    diffs=$((diffs + $(wc -l <<<"$changed")))
    # The table names the first five; stderr has them all.
    notes+=("$(awk -F'\t' 'NR <= 5 { printf "%s%s: %s → %s", (NR > 1 ? "; " : ""), $1, $2, $3 }
      END { if (NR > 5) printf "; and %d more", NR - 5 }' <<<"$changed")")
    echo "$suite: outcome differences (test, direct, via shim):" >&2
    echo "$changed" >&2
  fi
  if [ -d "$d/norm" ]; then
    local step
    for step in "$d"/norm/*; do
      step=$(basename "$step")
      if ! diff -u "$d/norm/$step" "$s/norm/$step" >"$2/$step.diff"; then
        diffs=$((diffs + 1))
        notes+=("output of $step differs")
        echo "$suite: output of $step differs (direct vs via shim):" >&2
        cat "$2/$step.diff" >&2
      else
        rm -f "$2/$step.diff"
      fi
    done
  fi
  if ! rows=$(check_rows "$s"); then
    diffs=$((diffs + 1))
    notes+=("row files do not parse or are empty")
    echo "$suite: bad or missing rows in $s/rows" >&2
  fi
  [ "$diffs" = 0 ] || failed=1
  local note="none" n
  if [ "${#notes[@]}" -gt 0 ]; then
    note=${notes[0]}
    for n in "${notes[@]:1}"; do note+="; $n"; done
  fi
  table+=("| $suite | $tests | $pd | $ps | $rows | $note |")
}

for suite in "${suites[@]}"; do
  case "$suite" in
    cryptoki)
      suite_cryptoki
      compare "cryptoki $CRYPTOKI_VERSION tests" "$work/cryptoki-run"
      ;;
    pkcs11-tool)
      suite_pkcs11_tool
      compare "OpenSC $(opensc-tool --info 2>/dev/null | sed -n 's/^OpenSC \([0-9.]*\).*/\1/p') pkcs11-tool" \
        "$work/pkcs11-tool"
      ;;
    p11tool)
      suite_p11tool
      compare "GnuTLS $(p11tool --version | sed -n 's/^p11tool //p') p11tool" "$work/p11tool"
      ;;
  esac
done

printf '%s\n' "${table[@]}" | tee "$work/summary.md"
if [ "$failed" != 0 ]; then
  echo "conformance: the shim changed what a client sees (details above, logs in $work)" >&2
  exit 1
fi
