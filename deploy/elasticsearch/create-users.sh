#!/bin/bash
# One-shot, after Elasticsearch is healthy: a service-account token for Kibana, and a
# least-privilege role and user for the workers. Every call is a PUT/POST that overwrites, so the
# script is safe to run again (it also applies password changes made in .env).
set -euo pipefail
es=https://elasticsearch:9200
prefix="${INDEX_PREFIX:-}"

call() {  # call METHOD PATH JSON
  local status
  status=$(curl -sS -o /tmp/response -w '%{http_code}' --cacert config/certs/ca/ca.crt \
    -u "elastic:${ELASTIC_PASSWORD}" -H 'Content-Type: application/json' -X "$1" "$es$2" -d "$3")
  if [ "$status" -ge 300 ]; then
    echo "$1 $2 failed with HTTP $status: $(cat /tmp/response)" >&2
    exit 1
  fi
  echo "$1 $2: HTTP $status"
}

# Kibana connects with its own service account, elastic/kibana, through a token kept in the
# kibana-token volume. A token that still authenticates is kept, so re-running this script never
# pulls the credentials from under a running Kibana; a missing or dead one is replaced.
token_file=/tokens/kibana
token_name=report-ingest
if [ -s "$token_file" ] && curl -fsS -o /dev/null --cacert config/certs/ca/ca.crt \
    -H "Authorization: Bearer $(cat "$token_file")" "$es/_security/_authenticate"; then
  echo "Kibana service token: still valid"
else
  curl -sS -o /dev/null --cacert config/certs/ca/ca.crt -u "elastic:${ELASTIC_PASSWORD}" \
    -X DELETE "$es/_security/service/elastic/kibana/credential/token/$token_name"
  call POST "/_security/service/elastic/kibana/credential/token/$token_name" '{}'
  # The response is {"created":true,"token":{"name":"...","value":"<secret>"}}.
  umask 077
  sed -n 's/.*"value":"\([^"]*\)".*/\1/p' /tmp/response > "$token_file"
  [ -s "$token_file" ] || { echo "no token value in: $(cat /tmp/response)" >&2; exit 1; }
  echo "Kibana service token: created"
fi

# The workers read and write their own indices and aliases and check cluster health. Templates
# decide every future index's mapping, so only the setup service, as `elastic`, installs them.
call PUT /_security/role/report_ingest "{
  \"cluster\": [\"monitor\"],
  \"indices\": [{
    \"names\": [\"${prefix}reports*\", \"${prefix}raw-pages*\", \"${prefix}failures*\"],
    \"privileges\": [\"all\"]
  }]
}"
call PUT /_security/user/report_ingest "{
  \"password\": \"${REPORT_INGEST_PASSWORD}\",
  \"roles\": [\"report_ingest\"],
  \"full_name\": \"report-ingest workers\"
}"
