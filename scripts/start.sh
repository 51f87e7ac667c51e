#!/usr/bin/env bash
# The main job, on a fresh machine too: `bash scripts/start.sh` (or `pnpm start`, which runs this).
# Sets itself up (prepare.sh: toolchain, install when needed, build), then hands over to the devstack
# runner (packages/devstack), which starts the test stack, certificates, topics, Elasticsearch resources,
# the four services and a local Slack stand-in, prints what runs where, and stops it all on Ctrl-C.
set -euo pipefail
. "$(dirname "$0")/prepare.sh"
exec node packages/devstack/dist/start.js "$@"
