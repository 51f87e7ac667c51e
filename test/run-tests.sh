#!/usr/bin/env bash
# `pnpm test`: unit tests, then integration tests against the real Kafka + Elasticsearch of test/stack
# (started by jest's global setup if not running, and stopped again if it started them).
# Ends with one summary line: "tests: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
rc=0
npx_jest() { node node_modules/jest/bin/jest.js "$@"; }

echo "== unit tests"
npx_jest --selectProjects unit --json --outputFile="$out/unit.json" "$@" || rc=1
echo "== integration tests (real Kafka + Elasticsearch)"
npx_jest --selectProjects integration --runInBand --json --outputFile="$out/integration.json" "$@" || rc=1

node -e '
const fs = require("fs");
let passed = 0, failed = 0, skipped = 0, suitesFailed = 0;
for (const f of process.argv.slice(1)) {
  if (!fs.existsSync(f)) { failed += 1; continue; }
  const r = JSON.parse(fs.readFileSync(f, "utf8"));
  passed += r.numPassedTests; failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0); skipped += r.numPendingTests + r.numTodoTests;
  suitesFailed += r.numFailedTestSuites + (r.numRuntimeErrorTestSuites || 0);
}
if (suitesFailed > 0) console.log(`(${suitesFailed} test suite(s) failed to run or had failures)`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$out/unit.json" "$out/integration.json"
rm -rf "$out"
exit $rc
