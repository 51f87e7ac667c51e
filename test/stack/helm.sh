#!/usr/bin/env bash
# helm for the chart tests, built once from the Go module proxy and cached beside Kafka and ES.
#
#   test/stack/helm.sh          build (first run only) and print the path of the helm binary
#
# Settings (environment):
#   KAUDIT_STACK_CACHE   the shared artifacts cache (~/.cache/kaudit-stack)
#   KAUDIT_HELM_VERSION  the helm.sh/helm/v3 module version (v3.22.0)
#   KAUDIT_HELM          a helm binary to use instead (nothing is built)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/go-path.sh"

CACHE="${KAUDIT_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kaudit-stack}"
VERSION="${KAUDIT_HELM_VERSION:-v3.22.0}"
DIR="$CACHE/helm-$VERSION"
log() { printf '[helm] %s\n' "$*" >&2; }

if [ -n "${KAUDIT_HELM:-}" ]; then
  [ -x "$KAUDIT_HELM" ] || { log "KAUDIT_HELM=$KAUDIT_HELM is not executable"; exit 1; }
  echo "$KAUDIT_HELM"
  exit 0
fi
if [ -x "$DIR/helm" ]; then
  echo "$DIR/helm"
  exit 0
fi
command -v go >/dev/null 2>&1 || { log "go is needed to build helm $VERSION (apt-get install golang-go)"; exit 1; }
mkdir -p "$CACHE"
# One builder at a time on a shared cache: others wait for the lock, then find the binary.
exec 9>"$CACHE/helm-$VERSION.lock"
flock 9
if [ ! -x "$DIR/helm" ]; then
  log "building helm $VERSION from the Go module proxy (first run only, a few minutes)"
  rm -rf "$DIR.tmp" && mkdir -p "$DIR.tmp"
  # What helm's Makefile sets: its version, and the Kubernetes version `helm template` and `helm lint`
  # assume (that of its client-go: v0.X.Y -> 1.X), which otherwise stays at 1.20 and fails kubeVersion.
  gomod="$(go mod download -json "helm.sh/helm/v3@$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  minor="$(sed -n 's:^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*:\1:p' "$gomod")"
  [ -n "$minor" ] || { log "cannot read the client-go version of helm $VERSION"; exit 1; }
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  GOBIN="$DIR.tmp" GOFLAGS=-buildvcs=false nice -n 10 go install -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$VERSION" >"$CACHE/helm-$VERSION.log" 2>&1 ||
    { log "go install failed; see $CACHE/helm-$VERSION.log"; exit 1; }
  rm -rf "$DIR" && mv "$DIR.tmp" "$DIR"
fi
echo "$DIR/helm"
