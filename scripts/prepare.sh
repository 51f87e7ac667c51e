# Sourced by start.sh, test.sh and setup.sh (not run on its own): the set-up every command needs on a
# fresh clone or after a pull, each step skipped or quick when already done, so no user has to
# remember a `source` or an install in each new shell.
#   Node 24 + pnpm on PATH (toolchain.sh), dependencies when the lockfile is newer than the last
#   install, then an incremental build (tsc -b: quick when nothing changed, never stale code).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/toolchain.sh
if [ ! -f node_modules/.modules.yaml ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ] ||
  [ "${KAUDIT_FORCE_INSTALL:-false}" = true ]; then
  pnpm install --frozen-lockfile
fi
pnpm build
