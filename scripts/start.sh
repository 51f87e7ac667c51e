#!/usr/bin/env bash
# `pnpm start`: the whole pipeline on this machine. Builds if needed, then hands over to the devstack
# runner (packages/devstack), which starts the test stack, certificates, topics, Elasticsearch resources,
# the four services and a local Slack stand-in, prints what runs where, and stops it all on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/toolchain.sh
[ -d node_modules ] || pnpm install --frozen-lockfile
pnpm build # incremental (tsc -b): quick when nothing changed, and never stale code after a pull
exec node packages/devstack/dist/start.js "$@"
