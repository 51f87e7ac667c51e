#!/usr/bin/env bash
# Builds test/stack/promql-check (Prometheus' PromQL parser, github.com/prometheus/prometheus from the Go
# module proxy) once into the stack cache and prints the binary's path. The chart test parses the
# PrometheusRule's expressions with it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/go-path.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${KAUDIT_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kaudit-stack}"
VERSION="${KAUDIT_PROMETHEUS_VERSION:-v0.316.0}"
DIR="$CACHE/promql-check-$VERSION"
log() { printf '[promql-check] %s\n' "$*" >&2; }
if [ ! -x "$DIR/promql-check" ]; then
  command -v go >/dev/null 2>&1 || { log "go is needed to build promql-check"; exit 1; }
  mkdir -p "$CACHE"
  exec 9>"$CACHE/promql-check-$VERSION.lock"
  flock 9
  if [ ! -x "$DIR/promql-check" ]; then
    log "building the PromQL parser of prometheus $VERSION from the Go module proxy (first run only)"
    src="$(mktemp -d)"
    trap 'rm -rf "$src"' EXIT
    cp "$HERE/promql-check/main.go" "$src/"
    (cd "$src" && go mod init kaudit.local/promql-check >/dev/null 2>&1 &&
      GOFLAGS="-mod=mod -buildvcs=false" go get "github.com/prometheus/prometheus@$VERSION" >"$CACHE/promql-check-$VERSION.log" 2>&1 &&
      GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$DIR.tmp/promql-check" . \
        >>"$CACHE/promql-check-$VERSION.log" 2>&1) ||
      { log "build failed; see $CACHE/promql-check-$VERSION.log"; exit 1; }
    rm -rf "$DIR" && mv "$DIR.tmp" "$DIR"
  fi
fi
echo "$DIR/promql-check"
