#!/usr/bin/env bash
# Set-up for a fresh clone: Node 24 + pnpm (see toolchain.sh), dependencies, build. Optional:
# scripts/start.sh and scripts/test.sh do the same themselves before they run.
set -euo pipefail
KAUDIT_FORCE_INSTALL=true . "$(dirname "$0")/prepare.sh"
echo "node $(node -v), pnpm $(pnpm -v)"
echo
echo "Set-up done. The main job:  bash scripts/start.sh     the tests:  bash scripts/test.sh"
