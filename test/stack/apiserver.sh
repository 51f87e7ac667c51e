#!/usr/bin/env bash
# A real kube-apiserver (+ etcd, + kubectl) for kaudit's test stack, built once per machine from the Go
# module proxy and cached by version; run on loopback with its audit webhook pointed at a kaudit sink.
#
#   test/stack/apiserver.sh build    build kube-apiserver, kubectl and etcd into the cache (first run: ~15 min)
#   test/stack/apiserver.sh up       start etcd + kube-apiserver (idempotent), wait for /readyz
#   test/stack/apiserver.sh down     stop both, leaving no process behind
#   test/stack/apiserver.sh status   what runs where
#   test/stack/apiserver.sh env      print the variables clients need (eval "$(test/stack/apiserver.sh env)")
#
# stack.sh calls this with `stack.sh up --with-apiserver` (or KAUDIT_STACK_APISERVER=true); `stack.sh down`
# always calls `apiserver.sh down`. See the settings below and the test-stack table in README.md.
# KAUDIT_APISERVER_NO_BUILD=true makes `up` fail at once instead of building (tests set it: a build takes
# longer than a test's timeout).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/go-path.sh"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${KAUDIT_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kaudit-stack}"
RUN="${KAUDIT_STACK_DIR:-/tmp/kaudit-stack}"
K8S_VERSION="${KAUDIT_K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${KAUDIT_ETCD_VERSION:-v3.7.3}"
K8S_DIR="$CACHE/kubernetes-$K8S_VERSION"
ETCD_DIR="$CACHE/etcd-embed-$ETCD_VERSION"
KUBE_APISERVER="$K8S_DIR/bin/kube-apiserver"
KUBECTL="$K8S_DIR/bin/kubectl"
ETCD="$ETCD_DIR/bin/etcd-embed"
DIR="$RUN/apiserver"
APISERVER_PORT="${KAUDIT_APISERVER_PORT:-6443}"
ETCD_PORT="${KAUDIT_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${KAUDIT_ETCD_PEER_PORT:-2380}"
AUDIT_POLICY="${KAUDIT_APISERVER_AUDIT_POLICY:-$ROOT/policies/audit-policy.yaml}"
WEBHOOK_URL="${KAUDIT_APISERVER_WEBHOOK_URL:-}"
TIMEOUT="${STACK_TIMEOUT_SECONDS:-180}"
# The stack's identities (token auth); their rights: test/stack/apiserver-rbac.yaml.
USERS="alice bob carol"

log() { printf '[apiserver] %s\n' "$*" >&2; }
die() { printf '[apiserver] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------- build

# The module zip of k8s.io/kubernetes has no staging/ tree: its go.mod replaces the k8s.io/* modules with
# ./staging/... and requires them at v0.0.0. Drop those replaces and pin the published versions
# (v1.X.Y of kubernetes = v0.X.Y of the staging modules).
build_kubernetes() {
  [ -x "$KUBE_APISERVER" ] && [ -x "$KUBECTL" ] && return 0
  command -v go >/dev/null 2>&1 || die "go is required to build kube-apiserver (https://go.dev/dl)"
  local staging_version="v0.${K8S_VERSION#v1.}" src="$K8S_DIR/src" mod
  log "building kube-apiserver and kubectl $K8S_VERSION from the Go module proxy (first run only, ~15 min)"
  mod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$mod" ] || die "go mod download k8s.io/kubernetes@$K8S_VERSION failed"
  rm -rf "$src" && mkdir -p "$K8S_DIR" && cp -r "$mod" "$src" && chmod -R u+w "$src"
  rm -f "$src/go.work" "$src/go.work.sum"
  rm -rf "$src/vendor"
  local edits=() m
  for m in $(sed -n 's:^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/.*:\1:p' "$src/go.mod"); do
    edits+=("-dropreplace=$m")
  done
  for m in $(sed -n 's:^[[:space:]]*\(k8s.io/[^ ]*\) v0\.0\.0$:\1:p' "$src/go.mod"); do
    edits+=("-require=$m@$staging_version")
  done
  (cd "$src" && go mod edit "${edits[@]}")
  local pkg="k8s.io/component-base/version" cgo="k8s.io/client-go/pkg/version" ldflags="-s -w" kv
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  for kv in "gitVersion=$K8S_VERSION" "gitMajor=1" "gitMinor=$minor" "gitTreeState=clean" \
    "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    ldflags+=" -X $pkg.$kv -X $cgo.$kv"
  done
  mkdir -p "$K8S_DIR/bin"
  (cd "$src" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 nice -n 10 \
    go build -trimpath -ldflags "$ldflags" -o "$K8S_DIR/bin/kubectl.tmp" ./cmd/kubectl) ||
    die "building kubectl failed"
  mv "$K8S_DIR/bin/kubectl.tmp" "$KUBECTL"
  (cd "$src" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 nice -n 10 \
    go build -trimpath -ldflags "$ldflags" -o "$K8S_DIR/bin/kube-apiserver.tmp" ./cmd/kube-apiserver) ||
    die "building kube-apiserver failed"
  mv "$K8S_DIR/bin/kube-apiserver.tmp" "$KUBE_APISERVER"
  rm -rf "$src"
  log "built $("$KUBE_APISERVER" --version)"
}

# etcd: our own few lines on go.etcd.io/etcd/server/v3/embed (test/stack/etcd-embed/main.go).
build_etcd() {
  [ -x "$ETCD" ] && return 0
  command -v go >/dev/null 2>&1 || die "go is required to build etcd"
  log "building etcd $ETCD_VERSION (embed) from the Go module proxy (first run only, ~1 min)"
  local src="$ETCD_DIR/src"
  rm -rf "$src" && mkdir -p "$src" "$ETCD_DIR/bin"
  cp "$HERE/etcd-embed/main.go" "$src/main.go"
  (cd "$src" && go mod init kaudit.local/etcd-embed >/dev/null 2>&1 &&
    GOFLAGS="-mod=mod -buildvcs=false" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 &&
    GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" \
      -o "$ETCD.tmp" .) || die "building etcd failed"
  mv "$ETCD.tmp" "$ETCD" && rm -rf "$src"
}

build() { build_etcd; build_kubernetes; }

# ------------------------------------------------------------------------------------------------ run

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() { # description, log file, pid file, command...
  local what="$1" logfile="$2" pidfile="$3"; shift 3
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    # A process that exited (a port taken between its choice and its bind, say) is not waited for.
    if ! pid_alive "$pidfile"; then
      log "last lines of $logfile:"; tail -n 30 "$logfile" >&2 || true
      die "$what exited before it was ready; full log: $logfile"
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "last lines of $logfile:"; tail -n 30 "$logfile" >&2 || true
      die "$what was not ready within ${TIMEOUT}s (STACK_TIMEOUT_SECONDS); full log: $logfile"
    fi
    sleep 0.2
  done
}

# A CA, a serving certificate for 127.0.0.1 and the service-account signing key (openssl, P-256/RSA).
make_pki() {
  local pki="$DIR/pki"
  [ -f "$pki/serving.crt" ] && [ -f "$pki/sa.key" ] && return 0
  mkdir -p "$pki" && chmod 700 "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/O=kaudit/CN=kaudit test-stack kube-apiserver CA" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=kaudit/CN=kube-apiserver" \
    -keyout "$pki/serving.key" -out "$pki/serving.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc" >"$pki/serving.ext"
  openssl x509 -req -in "$pki/serving.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
    -extfile "$pki/serving.ext" -out "$pki/serving.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  rm -f "$pki/serving.csr" "$pki/serving.ext"
}

# Token auth file (token,user,uid,"group1,group2") and one kubeconfig per identity.
make_identities() {
  local tokens="$DIR/tokens.csv" u
  if [ ! -f "$tokens" ]; then
    {
      echo "$(openssl rand -hex 24),kaudit-admin,uid-admin,\"system:masters\""
      echo "$(openssl rand -hex 24),alice@example.com,uid-alice,\"kaudit:operators\""
      echo "$(openssl rand -hex 24),bob@example.com,uid-bob,\"kaudit:developers\""
      echo "$(openssl rand -hex 24),carol@example.com,uid-carol,\"kaudit:impersonators\""
    } >"$tokens"
    chmod 600 "$tokens"
  fi
  write_kubeconfig "$DIR/kubeconfig" kaudit-admin
  for u in $USERS; do write_kubeconfig "$DIR/kubeconfig-$u" "$u@example.com"; done
}

write_kubeconfig() { # file user
  local token
  token="$(awk -F, -v u="$2" '$2 == u { print $1 }' "$DIR/tokens.csv")"
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: kaudit-stack
    cluster:
      server: https://127.0.0.1:$APISERVER_PORT
      certificate-authority: $DIR/pki/ca.crt
users:
  - name: $2
    user:
      token: $token
contexts:
  - name: kaudit-stack
    context: { cluster: kaudit-stack, user: $2 }
current-context: kaudit-stack
EOF
  chmod 600 "$1"
}

# The audit webhook kubeconfig, as in policies/webhook-kubeconfig.yaml: the sink's CA and a client
# certificate (mTLS) and/or a bearer token file.
make_webhook_config() {
  local ca="${KAUDIT_APISERVER_WEBHOOK_CA:-}" cert="${KAUDIT_APISERVER_WEBHOOK_CLIENT_CERT:-}"
  local key="${KAUDIT_APISERVER_WEBHOOK_CLIENT_KEY:-}" token="${KAUDIT_APISERVER_WEBHOOK_TOKEN_FILE:-}"
  [ -n "$cert" ] && [ -z "$key" ] && die "KAUDIT_APISERVER_WEBHOOK_CLIENT_CERT needs KAUDIT_APISERVER_WEBHOOK_CLIENT_KEY"
  {
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "clusters:"
    echo "  - name: kaudit-sink"
    echo "    cluster:"
    echo "      server: $WEBHOOK_URL"
    [ -n "$ca" ] && echo "      certificate-authority: $ca"
    echo "users:"
    echo "  - name: kube-apiserver"
    echo "    user:"
    [ -n "$cert" ] && echo "      client-certificate: $cert" && echo "      client-key: $key"
    [ -n "$token" ] && echo "      tokenFile: $token"
    [ -z "$cert$token" ] && echo "      {}"
    echo "contexts:"
    echo "  - name: kaudit"
    echo "    context: { cluster: kaudit-sink, user: kube-apiserver }"
    echo "current-context: kaudit"
  } >"$DIR/webhook-kubeconfig.yaml"
}

etcd_ready() { curl -fsS "http://127.0.0.1:$ETCD_PORT/health"; }
apiserver_ready() {
  curl -fsS --cacert "$DIR/pki/ca.crt" "https://127.0.0.1:$APISERVER_PORT/readyz" \
    -H "Authorization: Bearer $(awk -F, '$2 == "kaudit-admin" { print $1 }' "$DIR/tokens.csv")"
}

start_etcd() {
  if pid_alive "$DIR/etcd.pid"; then log "etcd already running (pid $(cat "$DIR/etcd.pid"))"; return; fi
  port_open "$ETCD_PORT" && die "port $ETCD_PORT is taken by another process; set KAUDIT_ETCD_PORT"
  port_open "$ETCD_PEER_PORT" && die "port $ETCD_PEER_PORT is taken by another process; set KAUDIT_ETCD_PEER_PORT"
  [ "${KAUDIT_STACK_KEEP_DATA:-false}" = true ] || rm -rf "$DIR/etcd"
  mkdir -p "$DIR/etcd" && chmod 700 "$DIR/etcd"
  nohup "$ETCD" --data-dir "$DIR/etcd" --listen-client-url "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-url "http://127.0.0.1:$ETCD_PEER_PORT" >"$RUN/logs/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"
}

start_apiserver() {
  if pid_alive "$DIR/kube-apiserver.pid"; then
    log "kube-apiserver already running (pid $(cat "$DIR/kube-apiserver.pid"))"; return
  fi
  port_open "$APISERVER_PORT" && die "port $APISERVER_PORT is taken by another process; set KAUDIT_APISERVER_PORT"
  [ -f "$AUDIT_POLICY" ] || die "no audit policy at $AUDIT_POLICY (KAUDIT_APISERVER_AUDIT_POLICY)"
  local args=(
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT"
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --endpoint-reconciler-type=none
    --tls-cert-file="$DIR/pki/serving.crt" --tls-private-key-file="$DIR/pki/serving.key"
    --token-auth-file="$DIR/tokens.csv" --authorization-mode=RBAC --anonymous-auth=false
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$DIR/pki/sa.pub" --service-account-signing-key-file="$DIR/pki/sa.key"
    --service-cluster-ip-range=10.96.0.0/16 --profiling=false
    --audit-policy-file="$AUDIT_POLICY"
    --audit-log-path="$DIR/audit.log" --audit-log-format=json --audit-log-maxsize=0 --audit-log-mode=blocking
  )
  if [ -n "$WEBHOOK_URL" ]; then
    make_webhook_config
    # The test stack sends a batch within a second instead of the default 30 s; the rest is the default.
    args+=(--audit-webhook-config-file="$DIR/webhook-kubeconfig.yaml" --audit-webhook-mode=batch
      --audit-webhook-batch-max-wait=1s)
  fi
  # shellcheck disable=SC2206 # extra flags are split on spaces on purpose
  [ -n "${KAUDIT_APISERVER_EXTRA_ARGS:-}" ] && args+=(${KAUDIT_APISERVER_EXTRA_ARGS})
  rm -f "$DIR/audit.log"
  log "starting kube-apiserver $K8S_VERSION on https://127.0.0.1:$APISERVER_PORT (audit webhook: ${WEBHOOK_URL:-none}; logs: $RUN/logs/kube-apiserver.log)"
  nohup "$KUBE_APISERVER" "${args[@]}" >"$RUN/logs/kube-apiserver.log" 2>&1 &
  echo $! >"$DIR/kube-apiserver.pid"
}

print_env() {
  echo "export KAUDIT_KUBECONFIG=$DIR/kubeconfig"
  echo "export KAUDIT_KUBECTL=$KUBECTL"
  echo "export KAUDIT_KUBE_APISERVER=$KUBE_APISERVER"
  echo "export KAUDIT_APISERVER_URL=https://127.0.0.1:$APISERVER_PORT"
  echo "export KAUDIT_APISERVER_DIR=$DIR"
  echo "export KAUDIT_APISERVER_AUDIT_LOG=$DIR/audit.log"
}

cmd_up() {
  command -v openssl >/dev/null 2>&1 || die "openssl is required"
  command -v curl >/dev/null 2>&1 || die "curl is required"
  if [ "${KAUDIT_APISERVER_NO_BUILD:-false}" = true ] && { [ ! -x "$KUBE_APISERVER" ] || [ ! -x "$KUBECTL" ] || [ ! -x "$ETCD" ]; }; then
    die "kube-apiserver $K8S_VERSION is not built yet: run test/stack/apiserver.sh build first (about 11 minutes, once per machine)"
  fi
  build
  mkdir -p "$DIR" "$RUN/logs" && chmod 700 "$DIR"
  make_pki
  make_identities
  start_etcd
  wait_until "etcd on 127.0.0.1:$ETCD_PORT" "$RUN/logs/etcd.log" "$DIR/etcd.pid" etcd_ready
  start_apiserver
  wait_until "kube-apiserver on 127.0.0.1:$APISERVER_PORT" "$RUN/logs/kube-apiserver.log" "$DIR/kube-apiserver.pid" apiserver_ready
  "$KUBECTL" --kubeconfig "$DIR/kubeconfig" apply -f "$HERE/apiserver-rbac.yaml" >"$RUN/logs/apiserver-rbac.log" 2>&1 ||
    die "applying $HERE/apiserver-rbac.yaml failed; see $RUN/logs/apiserver-rbac.log"
  print_env >"$DIR/env"
  log "ready: kube-apiserver https://127.0.0.1:$APISERVER_PORT, etcd 127.0.0.1:$ETCD_PORT (kubeconfig $DIR/kubeconfig)"
}

stop_pid() { # name pidfile
  local name="$1" file="$2" pid
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid="$(cat "$file")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 30s: killing"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$file"
}

cmd_down() {
  stop_pid kube-apiserver "$DIR/kube-apiserver.pid"
  stop_pid etcd "$DIR/etcd.pid"
  local leftovers
  # Only this stack directory's processes: another stack's API server may use the same etcd port.
  leftovers="$(pgrep -f -- "--audit-log-path=$DIR/audit.log |--data-dir $DIR/etcd " || true)"
  if [ -n "$leftovers" ]; then
    log "killing leftover API-server processes: $(echo "$leftovers" | tr '\n' ' ')"
    kill -KILL $leftovers 2>/dev/null || true
  fi
}

cmd_status() {
  local rc=0
  if pid_alive "$DIR/etcd.pid"; then echo "etcd: running pid $(cat "$DIR/etcd.pid") on 127.0.0.1:$ETCD_PORT"; else echo "etcd: stopped"; rc=1; fi
  if pid_alive "$DIR/kube-apiserver.pid"; then
    echo "kube-apiserver: running pid $(cat "$DIR/kube-apiserver.pid") on https://127.0.0.1:$APISERVER_PORT (kubeconfig $DIR/kubeconfig)"
  else echo "kube-apiserver: stopped"; rc=1; fi
  return $rc
}

case "${1:-}" in
  build) build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) print_env ;;
  *) echo "usage: $0 build|up|down|status|env" >&2; exit 2 ;;
esac
