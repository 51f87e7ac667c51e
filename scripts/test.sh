#!/usr/bin/env bash
# The tests, on a fresh machine too: `bash scripts/test.sh` (or `pnpm test`, which runs this). Sets
# itself up (prepare.sh: toolchain, install when needed, build: the integration suites run the built
# services), then test/run-tests.sh: unit tests, then integration tests against the real Kafka and
# Elasticsearch of test/stack (started if not running). Ends with "tests: N passed, N failed, N skipped".
set -euo pipefail
. "$(dirname "$0")/prepare.sh"
exec bash test/run-tests.sh "$@"
