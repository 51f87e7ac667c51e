#!/usr/bin/env bash
# The kaudit CLI without a toolchain on PATH: `bash scripts/kaudit.sh send ...` is what `pnpm start`
# prints, so it works in any shell of a fresh machine (same as `pnpm kaudit ...` with the toolchain).
set -euo pipefail
here="$(pwd)"
. "$(dirname "$0")/toolchain.sh"
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -f "$root/packages/cli/dist/bin.js" ] || (. "$root/scripts/prepare.sh")
cd "$here"
exec node "$root/packages/cli/dist/bin.js" "$@"
