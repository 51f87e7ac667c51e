#!/usr/bin/env bash
# One-time set-up for a fresh clone: Node 24 + pnpm (see toolchain.sh), dependencies, build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/toolchain.sh
echo "node $(node -v), pnpm $(pnpm -v)"
pnpm install --frozen-lockfile
pnpm build
echo
echo "Set-up done. In a new shell run:  . scripts/toolchain.sh   (puts Node 24 and pnpm on PATH)"
