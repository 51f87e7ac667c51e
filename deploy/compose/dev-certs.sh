#!/bin/sh
# Certificates for docker-compose.yml's secure profile, made once by its one-shot `certs` container
# (alpine + openssl) into a volume: a CA, the sink's serving certificate (sink-secure, localhost,
# 127.0.0.1) and the client certificate an API server (or `kaudit send --cert`) presents, CN
# kube-apiserver-audit. Development only: the CA key stays in the volume. Usage: dev-certs.sh DIR [UID]
# (UID owns the keys: the sink runs as the node image's user 1000). Runs again only when a file is missing.
set -eu
dir="${1:?usage: dev-certs.sh DIR [UID]}"
owner="${2:-1000}"
mkdir -p "$dir"
cd "$dir"
if [ -s ca.crt ] && [ -s server.crt ] && [ -s server.key ] && [ -s client.crt ] && [ -s client.key ]; then
  echo "dev-certs: $dir already has the certificates"
  exit 0
fi
umask 077
ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "$@"; }

ec -x509 -days 825 -subj "/O=kaudit/CN=kaudit compose development CA" -keyout ca.key -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

ec -subj "/O=kaudit/CN=sink-secure" -keyout server.key -out server.csr 2>/dev/null
printf '%s\n' "subjectAltName=DNS:sink-secure,DNS:localhost,IP:127.0.0.1" \
  "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -extfile server.ext \
  -out server.crt 2>/dev/null

ec -subj "/O=kaudit/CN=kube-apiserver-audit" -keyout client.key -out client.csr 2>/dev/null
printf '%s\n' "extendedKeyUsage=clientAuth" "keyUsage=critical,digitalSignature" >client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -extfile client.ext \
  -out client.crt 2>/dev/null

rm -f server.csr server.ext client.csr client.ext ca.srl
chmod 644 ca.crt server.crt client.crt
chmod 600 ca.key server.key client.key
chown "$owner" server.key client.key 2>/dev/null || true
echo "dev-certs: wrote ca.crt, server.crt/key, client.crt/key (CN kube-apiserver-audit) to $dir"
