#!/usr/bin/env bash
# Builds the peer for bench:sink and bench:indexer: Benthos v4.27.0 (MIT) into a cache outside the repo.
# `go install ...@v4.27.0` is refused (the module carries a replace directive) and public/components/all
# pulls a module the proxy refuses, so: a scratch module importing only the components the benches use,
# with the keyring replace line of Benthos' own go.mod. Prints the binary's path. None of it is committed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../stack/go-path.sh"
VERSION=v4.27.0
CACHE="${KAUDIT_BENTHOS_CACHE:-$HOME/.cache/kaudit-stack/benthos}"
BIN="$CACHE/benthos-$VERSION"
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi
command -v go >/dev/null || { echo "benthos.sh: go is not on PATH; the peer cannot be built" >&2; exit 2; }
SRC="$CACHE/src-$VERSION"
rm -rf "$SRC" && mkdir -p "$SRC" && cd "$SRC"
cat > main.go <<'GO'
package main

import (
	"context"

	_ "github.com/benthosdev/benthos/v4/public/components/elasticsearch"
	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/kafka"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
	"github.com/benthosdev/benthos/v4/public/service"
)

func main() {
	service.RunCLI(context.Background())
}
GO
cat > go.mod <<'MOD'
module kaudit.local/benthos-peer

go 1.22

replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3
MOD
{
  go get "github.com/benthosdev/benthos/v4@$VERSION"
  go mod tidy
  go build -o "$BIN.tmp" .
} >&2
mv "$BIN.tmp" "$BIN"
echo "$BIN"
