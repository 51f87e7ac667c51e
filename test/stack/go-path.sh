# Sourced by the scripts that build Go programs (apiserver.sh, helm.sh, promql-check.sh, test/bench/benthos.sh):
# when `go` is not on PATH (a login shell's profile not read, `env -i` in CI), look where the official
# tarball and the Debian package install it before giving up.
if ! command -v go >/dev/null 2>&1; then
  for dir in /usr/local/go/bin /usr/lib/go/bin "$HOME/go/bin" "$HOME/.local/go/bin"; do
    if [ -x "$dir/go" ]; then PATH="$dir:$PATH"; export PATH; break; fi
  done
fi
