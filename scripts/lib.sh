# Shared by the scripts: install what the project needs on a fresh Debian/Ubuntu machine.

# Installs the Debian packages named, when any of the given commands/files is missing.
need_packages() {
  local missing=0
  [ -e /usr/lib/softhsm/libsofthsm2.so ] || missing=1
  command -v softhsm2-util >/dev/null 2>&1 || missing=1
  command -v pkcs11-tool >/dev/null 2>&1 || missing=1
  command -v p11tool >/dev/null 2>&1 || missing=1
  command -v jq >/dev/null 2>&1 || missing=1
  [ "$missing" = 0 ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "==> installing softhsm2, opensc, gnutls-bin and jq (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq softhsm2 opensc gnutls-bin jq >/dev/null
}
