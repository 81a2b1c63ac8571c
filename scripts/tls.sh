#!/usr/bin/env bash
# Certificates for the TLS tests, made with openssl only, under
# $SLUICE_RUN_DIR/tls (default .run/tls in the repository). Idempotent: files
# that exist are kept (delete the directory to make new ones).
#
#   ca.pem             the private CA (key: ca.key)
#   server.pem/.key    server certificate for 127.0.0.1 and localhost (SANs)
#   expired.pem/.key   server certificate of the same CA, expired in 2021
#   wronghost.pem/.key server certificate of the same CA for wrong.invalid only
#   client.pem/.key    client certificate of the same CA (CN sluice-client)
#   other-ca.pem       a second CA that signed none of the above (the wrong CA)
#   rsa-public.pem     public half of server.key (SubjectPublicKeyInfo PEM)
#
# Prints the directory.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${SLUICE_RUN_DIR:-$ROOT/.run}
DIR=$RUN_DIR/tls
mkdir -p "$DIR"
cd "$DIR"

# Several test processes may ask at once: one makes the files.
exec 9>"$DIR/.lock"
flock 9

key() { [ -f "$1.key" ] || openssl genrsa -out "$1.key" 2048 2>/dev/null; }

ca() { # name, subject
  [ -f "$1.pem" ] && return 0
  key "$1"
  openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$1.pem.new"
  mv "$1.pem.new" "$1.pem"
}

# leaf name, subject, extensions, [startdate enddate]
leaf() {
  [ -f "$1.pem" ] && return 0
  key "$1"
  printf '%s\n' "$3" >"$1.ext"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  if [ $# -ge 5 ]; then
    # `openssl x509` cannot backdate; `openssl ca` can, with a scratch database.
    local ca_dir; ca_dir=$(mktemp -d "$DIR/ca.XXXXXX")
    : >"$ca_dir/index.txt"
    cat >"$ca_dir/ca.cnf" <<EOF
[ca]
default_ca = test
[test]
database = $ca_dir/index.txt
new_certs_dir = $ca_dir
serial = $ca_dir/serial
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
EOF
    openssl rand -hex 8 >"$ca_dir/serial"
    openssl ca -batch -config "$ca_dir/ca.cnf" -cert ca.pem -keyfile ca.key -in "$1.csr" \
      -startdate "$4" -enddate "$5" -extfile "$1.ext" -out "$1.pem.new" 2>/dev/null
    rm -rf "$ca_dir"
  else
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 \
      -days 3650 -extfile "$1.ext" -out "$1.pem.new" 2>/dev/null
  fi
  mv "$1.pem.new" "$1.pem"
  rm -f "$1.csr" "$1.ext"
}

SERVER_EXT='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth'

ca ca "/CN=Sluice Test CA"
ca other-ca "/CN=Sluice Other CA"
leaf server "/CN=localhost" "$SERVER_EXT
subjectAltName=IP:127.0.0.1,DNS:localhost"
leaf expired "/CN=localhost" "$SERVER_EXT
subjectAltName=IP:127.0.0.1,DNS:localhost" 200101000000Z 210101000000Z
leaf wronghost "/CN=wrong.invalid" "$SERVER_EXT
subjectAltName=DNS:wrong.invalid"
leaf client "/CN=sluice-client" 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
[ -f rsa-public.pem ] || openssl rsa -in server.key -pubout -out rsa-public.pem 2>/dev/null
# The server reads its key files as the same user; keep them private anyway.
chmod 600 ./*.key
echo "$DIR"
