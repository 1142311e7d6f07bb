#!/usr/bin/env bash
# Makes a private certificate authority and a server certificate for 127.0.0.1 and
# localhost, for the TLS tests: each service the tests start with TLS presents
# server.pem, and the pipelines trust ca.pem. other-ca.pem is a second authority that
# signed nothing here, to show that a wrong certificate is refused.
#
#   scripts/tls-certs.sh DIR    # writes DIR/{ca,other-ca,server}.{pem,key}; kept if there
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
cd "$dir"
[ -f server.pem ] && [ -f ca.pem ] && [ -f other-ca.pem ] && exit 0
command -v openssl >/dev/null || {
    echo "tls-certs: installing openssl from Debian's packages" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssl >/dev/null
}

authority() { # NAME: a self-signed CA valid for ten days
    openssl req -x509 -newkey rsa:2048 -nodes -days 10 -subj "/CN=adstream test $1" \
        -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
authority ca
authority other-ca
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key \
    -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 10 \
    -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
# The services read the key as another user may; these are throwaway test keys.
chmod 644 ./*.key
echo "tls-certs: made a test CA and a server certificate in $dir" >&2
