#!/bin/bash
# One-shot: create a private CA and the Elasticsearch node certificate in the `certs` volume.
# Runs as root in the Elasticsearch image (for elasticsearch-certutil), before Elasticsearch starts.
# Certificates that already exist are kept, so restarting the stack never invalidates the CA that
# Kibana and the workers trust; delete the volume to start over.
set -euo pipefail
cd /usr/share/elasticsearch
certs=config/certs

if [ -f "$certs/ca/ca.crt" ] && [ -f "$certs/elasticsearch/elasticsearch.crt" ]; then
  echo "certificates already present in $certs; keeping them"
  exit 0
fi

echo "creating a CA"
bin/elasticsearch-certutil ca --silent --pem --days "${CERT_DAYS:-1095}" --out "$certs/ca.zip"
unzip -o -q "$certs/ca.zip" -d "$certs"

echo "creating the certificate for the elasticsearch service"
# The compose service names are what clients connect to (es02 and es03: the nodes docker-compose.ha.yml
# adds, one certificate for all three); localhost serves the healthcheck and
# the port published on the host.
cat > "$certs/instances.yml" <<YAML
instances:
  - name: elasticsearch
    dns: [elasticsearch, es02, es03, localhost]
    ip: [127.0.0.1]
YAML
bin/elasticsearch-certutil cert --silent --pem --days "${CERT_DAYS:-1095}" \
  --in "$certs/instances.yml" --ca-cert "$certs/ca/ca.crt" --ca-key "$certs/ca/ca.key" \
  --out "$certs/certs.zip"
unzip -o -q "$certs/certs.zip" -d "$certs"
rm -f "$certs/ca.zip" "$certs/certs.zip" "$certs/instances.yml"

# Elasticsearch and Kibana run as uid 1000 in group 0, the workers as uid 10001: everyone may
# read the CA certificate, group 0 the node key, and only root the CA key.
chown -R root:root "$certs"
chmod 755 "$certs" "$certs/ca"
chmod 644 "$certs/ca/ca.crt"
chmod 600 "$certs/ca/ca.key"
chmod 750 "$certs/elasticsearch"
chmod 640 "$certs/elasticsearch/elasticsearch.crt" "$certs/elasticsearch/elasticsearch.key"
echo "certificates created"
