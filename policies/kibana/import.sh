#!/bin/sh
# Imports kaudit's Kibana saved objects (every *.ndjson beside this script: data views, saved searches,
# visualizations, dashboard) once Kibana answers. Idempotent: objects keep fixed ids and are overwritten.
# POSIX sh + curl only (docker-compose runs it in curlimages/curl).
#   KIBANA_URL        default http://localhost:5601
#   KIBANA_USERNAME / KIBANA_PASSWORD   basic auth, optional
#   KIBANA_SPACE      space id, optional (default space otherwise)
#   KIBANA_WAIT_SECONDS  how long to wait for Kibana, default 300
#   KIBANA_IMPORT_SECURITY_RULES=true  also import security/*.ndjson (the Elastic Security rule that turns
#                     kaudit findings into alerts) through the detection engine's rule import; needs a Kibana
#                     with Security set up (docs/elastic-security.md)
set -eu

dir=$(cd "$(dirname "$0")" && pwd)
url=${KIBANA_URL:-http://localhost:5601}
wait_seconds=${KIBANA_WAIT_SECONDS:-300}
space_path=""
if [ -n "${KIBANA_SPACE:-}" ]; then space_path="/s/${KIBANA_SPACE}"; fi

kibana() {
  if [ -n "${KIBANA_USERNAME:-}" ]; then
    curl -sS -u "${KIBANA_USERNAME}:${KIBANA_PASSWORD:-}" -H 'kbn-xsrf: kaudit' "$@"
  else
    curl -sS -H 'kbn-xsrf: kaudit' "$@"
  fi
}

echo "kibana-import: waiting for Kibana at ${url} (up to ${wait_seconds}s)"
waited=0
until kibana -f "${url}/api/status" 2>/dev/null | grep -q '"level":"available"'; do
  if [ "$waited" -ge "$wait_seconds" ]; then
    echo "kibana-import: Kibana at ${url} not available after ${wait_seconds}s" >&2
    exit 1
  fi
  sleep 5
  waited=$((waited + 5))
done

status=0
# import_all <api path> <files...>: POSTs each file to the import API; a failure is reported and remembered.
import_all() {
  api=$1
  shift
  for file in "$@"; do
    [ -e "$file" ] || continue
    reply=$(kibana -X POST "${url}${space_path}${api}?overwrite=true" --form "file=@${file}")
    if printf '%s' "$reply" | grep -q '"success":true'; then
      echo "kibana-import: imported $(basename "$file"): ${reply}"
    else
      echo "kibana-import: import of $(basename "$file") failed: ${reply}" >&2
      status=1
    fi
  done
}
import_all /api/saved_objects/_import "$dir"/*.ndjson
if [ "${KIBANA_IMPORT_SECURITY_RULES:-false}" = true ]; then
  import_all /api/detection_engine/rules/_import "$dir"/security/*.ndjson
fi
exit "$status"
