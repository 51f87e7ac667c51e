#!/usr/bin/env bash
# kaudit's local test stack without Docker: Apache Kafka (KRaft, single node) and Elasticsearch (the
# integ-test distribution), both fetched from Maven Central with mvn and run with java on loopback.
#
#   test/stack/stack.sh up       start (idempotent: a running stack is left alone)
#   test/stack/stack.sh down     stop, leaving no process behind
#   test/stack/stack.sh status   what runs where, and where the logs are
#   test/stack/stack.sh env      print the variables clients need (eval "$(test/stack/stack.sh env)")
#
# Settings (environment):
#   KAUDIT_STACK_CACHE   downloaded artifacts, kept between runs   (~/.cache/kaudit-stack)
#   KAUDIT_STACK_DIR     data, logs and pid files of the running stack (/tmp/kaudit-stack)
#   KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), ES_PORT (9200), ES_TRANSPORT_PORT (9300)
#   KAFKA_HEAP (512m), ES_HEAP (1g), STACK_TIMEOUT_SECONDS (180)
#   KAUDIT_STACK_KEEP_DATA=true  keep data dirs across `up` (default: fresh, formatted data on every start)
#   KAUDIT_STACK_ONLY=kafka|elasticsearch  run one server only (e.g. a second, private Kafka that a test may
#                        stop and restart: set KAUDIT_STACK_DIR and the ports too)
#   KAFKA_SASL_SSL_PORT (KAFKA_PORT+2), KAFKA_MTLS_PORT (KAFKA_PORT+3)  Kafka's secured listeners, always on
#                        next to the plaintext one: SASL_SSL (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN; user
#                        kaudit, a fresh random password per formatted broker) and SSL with client
#                        certificates required. Certificates (one CA for both servers) in $KAUDIT_STACK_DIR/certs.
#   KAUDIT_STACK_ES_SECURE=true  Elasticsearch with security on: TLS on HTTP, user elastic with a bootstrap
#                        password, API keys, file-realm users kaudit-indexer (the indexer's privileges)
#                        and kaudit-monitor (lacking them); needs a JDK (see install_analysis_stub). Meant for a second instance (own KAUDIT_STACK_DIR and ports,
#                        KAUDIT_STACK_ONLY=elasticsearch): the default stack stays plaintext for the suites.
#   KAUDIT_STACK_APISERVER=true (or `up --with-apiserver`)  also a real kube-apiserver + etcd: test/stack/apiserver.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${KAUDIT_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kaudit-stack}"
RUN="${KAUDIT_STACK_DIR:-/tmp/kaudit-stack}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
ES_PORT="${ES_PORT:-9200}"
ES_TRANSPORT_PORT="${ES_TRANSPORT_PORT:-9300}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
ES_HEAP="${ES_HEAP:-1g}"
TIMEOUT="${STACK_TIMEOUT_SECONDS:-180}"
ES_USER="${KAUDIT_STACK_ES_USER:-kaudit-es}"
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-$((KAFKA_PORT + 2))}"
KAFKA_MTLS_PORT="${KAFKA_MTLS_PORT:-$((KAFKA_PORT + 3))}"
ES_SECURE="${KAUDIT_STACK_ES_SECURE:-false}"
CERTS="$RUN/certs"
SASL_USER=kaudit
SASL_PASSWORD_FILE="$RUN/secrets/kafka-sasl-password"
ES_PASSWORD_FILE="$RUN/secrets/es-elastic-password"
ES_KAUDIT_PASSWORD_FILE="$RUN/secrets/es-kaudit-password"

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml")"
ES_VERSION="$(sed -n 's:.*<elasticsearch.version>\(.*\)</elasticsearch.version>.*:\1:p' "$HERE/pom.xml")"
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
ES_ZIP="$CACHE/elasticsearch-$ES_VERSION.zip"
# The ES install lives under $RUN, not $CACHE: ES runs as an unprivileged user who cannot enter /root.
ES_HOME="$RUN/elasticsearch-$ES_VERSION"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

java_major() { "$1" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -1; }

# The newest JDK >= 17 under /usr/lib/jvm (or JAVA_HOME), for both servers.
pick_java_home() {
  local best="" best_major=0 home major
  for home in ${JAVA_HOME:-} /usr/lib/jvm/*; do
    [ -x "$home/bin/java" ] || continue
    major="$(java_major "$home/bin/java")"
    [ -n "$major" ] && [ "$major" -gt "$best_major" ] && { best="$home"; best_major="$major"; }
  done
  [ "$best_major" -ge 17 ] && echo "$best"
}

ensure_tools() {
  local missing=()
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  [ -n "$(pick_java_home)" ] || missing+=(openjdk-17-jdk-headless)
  command -v unzip >/dev/null 2>&1 || missing+=(unzip)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}; a JDK >= 17 is required)"
  fi
}

fetch_artifacts() {
  mkdir -p "$CACHE"
  if [ ! -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    log "fetching Apache Kafka $KAFKA_VERSION from Maven Central (first run only)"
    rm -rf "$KAFKA_LIBS.tmp"
    mvn -q -B -f "$HERE/pom.xml" -P kafka dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$KAFKA_LIBS.tmp" >"$CACHE/mvn-kafka.log" 2>&1 ||
      die "mvn could not fetch Kafka $KAFKA_VERSION; see $CACHE/mvn-kafka.log"
    # slf4j 1.7 from Kafka's tree would shadow the 2.x binding we pinned.
    rm -f "$KAFKA_LIBS.tmp"/slf4j-api-1.*.jar
    rm -rf "$KAFKA_LIBS" && mkdir -p "$(dirname "$KAFKA_LIBS")" && mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  fi
  if [ ! -f "$ES_ZIP" ]; then
    log "fetching Elasticsearch $ES_VERSION (integ-test-zip) from Maven Central (first run only)"
    rm -rf "$CACHE/es.tmp"
    mvn -q -B -f "$HERE/pom.xml" -P elasticsearch dependency:copy-dependencies \
      -DoutputDirectory="$CACHE/es.tmp" >"$CACHE/mvn-es.log" 2>&1 ||
      die "mvn could not fetch org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION; see $CACHE/mvn-es.log"
    mv "$CACHE/es.tmp/elasticsearch-$ES_VERSION.zip" "$ES_ZIP" && rm -rf "$CACHE/es.tmp"
  fi
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() { # description, log file, pid file, command...
  local what="$1" logfile="$2" pidfile="$3"; shift 3
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$pidfile"; then # exited while starting: say so now, not after the timeout
      log "last lines of $logfile:"; tail -n 30 "$logfile" >&2 || true
      die "$what exited while starting; full log: $logfile"
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "last lines of $logfile:"; tail -n 30 "$logfile" >&2 || true
      die "$what was not ready within ${TIMEOUT}s (STACK_TIMEOUT_SECONDS); full log: $logfile"
    fi
    sleep 1
  done
}

kafka_ready() {
  "$JAVA_HOME/bin/java" -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$RUN/kafka/log4j2-tools.properties" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list
}

es_ready() {
  if [ "$ES_SECURE" = true ]; then
    # curl reads user:password as a config file on stdin, so it never shows in ps.
    printf 'user = "elastic:%s"\n' "$(cat "$ES_PASSWORD_FILE")" |
      curl -fsS -K - --cacert "$CERTS/ca.pem" "https://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=1s"
  else
    curl -fsS "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=1s"
  fi
}

cert_valid() { [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1; }

# One CA, a server certificate for 127.0.0.1/localhost (Kafka's listeners and Elasticsearch's HTTP) and a
# client certificate (mTLS listener), all PEM with unencrypted PKCS#8 keys, reused while valid. Kafka 4
# reads PEM directly (ssl.keystore.type=PEM), so no keytool and no keystore passwords.
ensure_certs() {
  if cert_valid "$CERTS/ca.pem" && cert_valid "$CERTS/server.pem" && cert_valid "$CERTS/client.pem"; then return; fi
  log "generating the stack's CA and certificates in $CERTS"
  local work; work="$(mktemp -d "$RUN/.certs-XXXXXX")"
  (
    cd "$work"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/O=kaudit/CN=kaudit test stack CA" \
      -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -newkey rsa:2048 -nodes -subj "/O=kaudit/CN=localhost" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile server.ext -out server.pem
    openssl req -newkey rsa:2048 -nodes -subj "/O=kaudit/CN=kaudit-client" -keyout client.key -out client.csr
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile client.ext -out client.pem
    cat server.key server.pem >server-keystore.pem
    rm -f ./*.csr ./*.ext ./*.srl
  ) >"$RUN/logs/certs.log" 2>&1 || die "generating certificates failed; see $RUN/logs/certs.log"
  chmod 644 "$work"/*.pem "$work"/*.key
  rm -rf "$CERTS" && mv "$work" "$CERTS" && chmod 755 "$CERTS"
}

new_secret() { # file: a random password, readable by the owner (and the ES user, who is given the file)
  mkdir -p "$(dirname "$1")" && chmod 700 "$(dirname "$1")"
  (umask 077 && openssl rand -hex 18 >"$1")
}

start_kafka() {
  if pid_alive "$RUN/kafka.pid"; then log "Kafka already running (pid $(cat "$RUN/kafka.pid"))"; return; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process; set KAFKA_PORT"
  local dir="$RUN/kafka"
  port_open "$KAFKA_SASL_SSL_PORT" && die "port $KAFKA_SASL_SSL_PORT is taken by another process; set KAFKA_SASL_SSL_PORT"
  port_open "$KAFKA_MTLS_PORT" && die "port $KAFKA_MTLS_PORT is taken by another process; set KAFKA_MTLS_PORT"
  [ "${KAUDIT_STACK_KEEP_DATA:-false}" = true ] || rm -rf "$dir/data"
  mkdir -p "$dir/data" "$RUN/logs"
  ensure_certs
  # SCRAM credentials live in the cluster metadata, written at format time: a new password per format.
  [ -f "$dir/data/meta.properties" ] && [ -s "$SASL_PASSWORD_FILE" ] || new_secret "$SASL_PASSWORD_FILE"
  local sasl_password; sasl_password="$(cat "$SASL_PASSWORD_FILE")"
  (umask 077 && cat >"$dir/server.properties") <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,MTLS://127.0.0.1:$KAFKA_MTLS_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,MTLS://127.0.0.1:$KAFKA_MTLS_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL
inter.broker.listener.name=PLAINTEXT
ssl.keystore.type=PEM
ssl.keystore.location=$CERTS/server-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
listener.name.mtls.ssl.client.auth=required
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$sasl_password";
log.dirs=$dir/data
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.backoff.ms=1000
EOF
  cat >"$dir/log4j2.properties" <<EOF
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$RUN/logs/kafka.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
EOF
  printf 'rootLogger.level=ERROR\n' >"$dir/log4j2-tools.properties"
  if [ ! -f "$dir/data/meta.properties" ]; then
    "$JAVA_HOME/bin/java" -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$dir/log4j2-tools.properties" \
      kafka.tools.StorageTool format --standalone -t "$("$JAVA_HOME/bin/java" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)" \
      --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$sasl_password]" \
      --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$sasl_password]" \
      -c "$dir/server.properties" >"$RUN/logs/kafka-format.log" 2>&1 ||
      die "formatting Kafka's log dir failed; see $RUN/logs/kafka-format.log"
  fi
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT, SASL_SSL :$KAFKA_SASL_SSL_PORT, mTLS :$KAFKA_MTLS_PORT (logs: $RUN/logs/kafka.log)"
  nohup "$JAVA_HOME/bin/java" -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkaudit.stack="$RUN" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" >"$RUN/logs/kafka.out" 2>&1 &
  echo $! >"$RUN/kafka.pid"
}

ensure_es_user() {
  [ "$(id -u)" = 0 ] || { ES_USER="$(id -un)"; return; }
  # useradd lives in /usr/sbin, which a PATH cut down to /usr/bin:/bin (env -i, some CI runners) lacks.
  id "$ES_USER" >/dev/null 2>&1 ||
    PATH="$PATH:/usr/sbin:/sbin" useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
}

# The .security index (API keys, native users) cannot be created on the integ-test distribution: its
# mapping names pattern_capture, uax_url_email and unique from the analysis-common module, which this
# distribution does not ship (nor does Maven Central). test/stack/es-analysis-stub provides stand-ins built
# from the Lucene classes the distribution has; compiled once per Elasticsearch version, test stack only.
install_analysis_stub() {
  local src="$HERE/es-analysis-stub/src/dev/kaudit/stack/AnalysisStubPlugin.java"
  local jar="$CACHE/kaudit-analysis-stub-$ES_VERSION.jar" plugin="$ES_HOME/plugins/kaudit-analysis-stub"
  if [ ! -s "$jar" ] || [ "$src" -nt "$jar" ]; then
    [ -x "$JAVA_HOME/bin/javac" ] || die "KAUDIT_STACK_ES_SECURE=true needs a JDK (javac) in $JAVA_HOME"
    local work; work="$(mktemp -d "$RUN/.stub-XXXXXX")"
    { "$JAVA_HOME/bin/javac" --release 17 -nowarn -cp "$ES_HOME/lib/*" -d "$work" "$src" &&
      "$JAVA_HOME/bin/jar" cf "$jar.tmp" -C "$work" . && mv "$jar.tmp" "$jar"; } >"$RUN/logs/es-analysis-stub.log" 2>&1 ||
      die "compiling the analysis stub plugin failed; see $RUN/logs/es-analysis-stub.log"
    rm -rf "$work"
  fi
  mkdir -p "$plugin" && cp "$jar" "$plugin/kaudit-analysis-stub.jar"
  cat >"$plugin/plugin-descriptor.properties" <<EOF
description=kaudit test stack: analysis-common stand-ins for the .security index
version=$ES_VERSION
name=kaudit-analysis-stub
classname=dev.kaudit.stack.AnalysisStubPlugin
java.version=17
elasticsearch.version=$ES_VERSION
EOF
}

start_es() {
  if pid_alive "$RUN/es.pid"; then log "Elasticsearch already running (pid $(cat "$RUN/es.pid"))"; return; fi
  port_open "$ES_PORT" && die "port $ES_PORT is taken by another process; set ES_PORT"
  ensure_es_user
  if [ ! -x "$ES_HOME/bin/elasticsearch" ]; then
    mkdir -p "$RUN" && rm -rf "$ES_HOME.tmp" && mkdir -p "$ES_HOME.tmp"
    unzip -q "$ES_ZIP" -d "$ES_HOME.tmp" && mv "$ES_HOME.tmp/elasticsearch-$ES_VERSION" "$ES_HOME" && rm -rf "$ES_HOME.tmp"
  fi
  local dir="$RUN/es"
  [ "${KAUDIT_STACK_KEEP_DATA:-false}" = true ] || rm -rf "$dir/data"
  rm -rf "$dir/config" && mkdir -p "$dir/data" "$dir/logs" "$dir/tmp" "$RUN/logs" && cp -r "$ES_HOME/config" "$dir/config"
  cat >>"$dir/config/jvm.options" <<EOF
-Xms$ES_HEAP
-Xmx$ES_HEAP
EOF
  local security=(-E xpack.security.enabled=false) scheme=http
  if [ "$ES_SECURE" = true ]; then
    scheme=https
    ensure_certs
    # ES reads key material from its config dir only; the bootstrap password goes into its keystore.
    mkdir -p "$dir/config/certs" && cp "$CERTS/ca.pem" "$CERTS/server.pem" "$CERTS/server.key" "$dir/config/certs/"
    [ -s "$ES_PASSWORD_FILE" ] && [ "${KAUDIT_STACK_KEEP_DATA:-false}" = true ] || new_secret "$ES_PASSWORD_FILE"
    rm -f "$dir/config/elasticsearch.keystore"
    env ES_JAVA_HOME="$JAVA_HOME" ES_PATH_CONF="$dir/config" "$ES_HOME/bin/elasticsearch-keystore" create \
      >"$RUN/logs/es-keystore.log" 2>&1 || die "elasticsearch-keystore create failed; see $RUN/logs/es-keystore.log"
    env ES_JAVA_HOME="$JAVA_HOME" ES_PATH_CONF="$dir/config" "$ES_HOME/bin/elasticsearch-keystore" add -x -f \
      bootstrap.password <"$ES_PASSWORD_FILE" >>"$RUN/logs/es-keystore.log" 2>&1 ||
      die "elasticsearch-keystore add bootstrap.password failed; see $RUN/logs/es-keystore.log"
    install_analysis_stub
    # File-realm users and roles, which need no .security index (API keys do: see install_analysis_stub).
    [ -s "$ES_KAUDIT_PASSWORD_FILE" ] || new_secret "$ES_KAUDIT_PASSWORD_FILE"
    cat >"$dir/config/roles.yml" <<EOF
# What the indexer and kaudit es-setup need (docs: services/indexer/README.md), and a role that lacks it.
kaudit_indexer:
  cluster: [monitor, manage_index_templates, manage_ilm]
  indices:
    - names: ['logs-kaudit.*', 'logs-kubernetes.audit_logs-kaudit*']
      privileges: [all]
kaudit_monitor:
  cluster: [monitor]
EOF
    : >"$dir/config/users" && : >"$dir/config/users_roles"
    local user
    for user in kaudit-indexer:kaudit_indexer kaudit-monitor:kaudit_monitor; do
      env ES_JAVA_HOME="$JAVA_HOME" ES_PATH_CONF="$dir/config" "$ES_HOME/bin/elasticsearch-users" useradd \
        "${user%%:*}" -p "$(cat "$ES_KAUDIT_PASSWORD_FILE")" -r "${user#*:}" >>"$RUN/logs/es-keystore.log" 2>&1 ||
        die "elasticsearch-users useradd ${user%%:*} failed; see $RUN/logs/es-keystore.log"
    done
    security=(-E xpack.security.enabled=true -E xpack.security.http.ssl.enabled=true
      -E xpack.security.http.ssl.key=certs/server.key -E xpack.security.http.ssl.certificate=certs/server.pem
      -E xpack.security.http.ssl.certificate_authorities=certs/ca.pem
      -E xpack.security.transport.ssl.enabled=false -E xpack.security.authc.api_key.enabled=true)
  fi
  chmod 755 "$RUN"
  chown -R "$ES_USER" "$dir" "$ES_HOME"
  if [ "$(id -u)" = 0 ] && ! setpriv --reuid="$ES_USER" --regid="$(id -g "$ES_USER")" --init-groups test -x "$ES_HOME/bin"; then
    die "user $ES_USER cannot reach $ES_HOME: a directory above $RUN is closed to other users (mode 700?); use a KAUDIT_STACK_DIR others can traverse"
  fi
  log "starting Elasticsearch $ES_VERSION on $scheme://127.0.0.1:$ES_PORT as user $ES_USER (logs: $RUN/logs/es.log)"
  local cmd=(env ES_JAVA_HOME="$JAVA_HOME" ES_PATH_CONF="$dir/config" ES_TMPDIR="$dir/tmp"
    "$ES_HOME/bin/elasticsearch" -E discovery.type=single-node -E network.host=127.0.0.1
    -E http.port="$ES_PORT" -E transport.port="$ES_TRANSPORT_PORT" -E path.data="$dir/data" -E path.logs="$dir/logs"
    "${security[@]}" -E cluster.routing.allocation.disk.threshold_enabled=false
    -E action.destructive_requires_name=false)
  if [ "$(id -u)" = 0 ]; then
    nohup setpriv --reuid="$ES_USER" --regid="$(id -g "$ES_USER")" --init-groups "${cmd[@]}" >"$RUN/logs/es.log" 2>&1 &
  else
    nohup "${cmd[@]}" >"$RUN/logs/es.log" 2>&1 &
  fi
  echo $! >"$RUN/es.pid"
}

# Secrets are passed as file paths, never printed: `eval "$(stack.sh env)"` may end up in a CI log.
print_env() {
  # The stack's own directory too: tools that read its pid files (bench:e2e's per-process cores) find it.
  echo "export KAUDIT_STACK_DIR=$RUN"
  echo "export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "export KAUDIT_STACK_CA_FILE=$CERTS/ca.pem"
  if [ "${KAUDIT_STACK_ONLY:-}" != elasticsearch ]; then
    echo "export KAFKA_SASL_SSL_BROKERS=127.0.0.1:$KAFKA_SASL_SSL_PORT"
    echo "export KAFKA_MTLS_BROKERS=127.0.0.1:$KAFKA_MTLS_PORT"
    echo "export KAUDIT_STACK_CLIENT_CERT_FILE=$CERTS/client.pem"
    echo "export KAUDIT_STACK_CLIENT_KEY_FILE=$CERTS/client.key"
    echo "export KAUDIT_STACK_SASL_USERNAME=$SASL_USER"
    echo "export KAUDIT_STACK_SASL_PASSWORD_FILE=$SASL_PASSWORD_FILE"
  fi
  if [ "$ES_SECURE" = true ]; then
    echo "export ES_NODE=https://127.0.0.1:$ES_PORT"
    echo "export KAUDIT_STACK_ES_USERNAME=elastic"
    echo "export KAUDIT_STACK_ES_PASSWORD_FILE=$ES_PASSWORD_FILE"
    echo "export KAUDIT_STACK_ES_INDEXER_USERNAME=kaudit-indexer"
    echo "export KAUDIT_STACK_ES_MONITOR_USERNAME=kaudit-monitor"
    echo "export KAUDIT_STACK_ES_KAUDIT_PASSWORD_FILE=$ES_KAUDIT_PASSWORD_FILE"
  else
    echo "export ES_NODE=http://127.0.0.1:$ES_PORT"
  fi
  if [ -f "$RUN/apiserver/kube-apiserver.pid" ]; then "$HERE/apiserver.sh" env; fi
}

cmd_up() {
  ensure_tools
  JAVA_HOME="$(pick_java_home)"
  log "java: $JAVA_HOME ($(java_major "$JAVA_HOME/bin/java"))"
  fetch_artifacts
  mkdir -p "$RUN/logs"
  local only="${KAUDIT_STACK_ONLY:-}"
  case "$only" in "" | kafka | elasticsearch) ;; *) die "KAUDIT_STACK_ONLY must be kafka or elasticsearch, not '$only'" ;; esac
  [ "$only" = elasticsearch ] || start_kafka
  [ "$only" = kafka ] || start_es
  [ "$only" = elasticsearch ] || wait_until "Kafka on 127.0.0.1:$KAFKA_PORT" "$RUN/logs/kafka.log" "$RUN/kafka.pid" kafka_ready
  [ "$only" = kafka ] || wait_until "Elasticsearch on 127.0.0.1:$ES_PORT" "$RUN/logs/es.log" "$RUN/es.pid" es_ready
  if [ "$WITH_APISERVER" = true ]; then "$HERE/apiserver.sh" up; fi
  print_env >"$RUN/env"
  local kafka_at="Kafka 127.0.0.1:$KAFKA_PORT (SASL_SSL :$KAFKA_SASL_SSL_PORT, mTLS :$KAFKA_MTLS_PORT)"
  local es_at="Elasticsearch $([ "$ES_SECURE" = true ] && echo https || echo http)://127.0.0.1:$ES_PORT"
  case "$only" in kafka) es_at="" ;; elasticsearch) kafka_at="" ;; esac
  log "ready: ${only:-Kafka and Elasticsearch}: $kafka_at${kafka_at:+${es_at:+, }}$es_at (logs in $RUN/logs)"
  log "clients: eval \"\$(KAUDIT_STACK_DIR=$RUN $0 env)\" or read $RUN/env"
}

stop_pid() { # name pidfile
  local name="$1" file="$2" pid
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid="$(cat "$file")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 30s: killing"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$file"
}

cmd_down() {
  "$HERE/apiserver.sh" down
  stop_pid Elasticsearch "$RUN/es.pid"
  stop_pid Kafka "$RUN/kafka.pid"
  # Anything still running from this stack's directories (a crashed wrapper, a lost pid file). The space
  # after $RUN: /tmp/kaudit-stack must not match the Kafka of /tmp/kaudit-stack-other.
  local leftovers
  # Anchored: /tmp/kaudit-stack must not match another stack's /tmp/kaudit-stack-secure.
  leftovers="$(pgrep -f -- "-Dkaudit.stack=$RUN( |\$)|$ES_HOME/" || true)"
  if [ -n "$leftovers" ]; then
    log "killing leftover stack processes: $(echo "$leftovers" | tr '\n' ' ')"
    kill -KILL $leftovers 2>/dev/null || true
  fi
  log "stopped"
}

cmd_status() {
  local rc=0
  if pid_alive "$RUN/kafka.pid"; then echo "kafka: running pid $(cat "$RUN/kafka.pid") on 127.0.0.1:$KAFKA_PORT"; else echo "kafka: stopped"; rc=1; fi
  if pid_alive "$RUN/es.pid"; then echo "elasticsearch: running pid $(cat "$RUN/es.pid") on http://127.0.0.1:$ES_PORT"; else echo "elasticsearch: stopped"; rc=1; fi
  [ -f "$RUN/apiserver/kube-apiserver.pid" ] && { "$HERE/apiserver.sh" status || rc=1; }
  echo "logs: $RUN/logs"
  return $rc
}

WITH_APISERVER="${KAUDIT_STACK_APISERVER:-false}"
[ "${1:-}" = up ] && [ "${2:-}" = --with-apiserver ] && WITH_APISERVER=true

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) print_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
