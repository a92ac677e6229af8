#!/bin/bash
# One-shot, after Elasticsearch is healthy: the built-in kibana_system user's password, and a
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

# Kibana 9 refuses to connect as the `elastic` superuser; kibana_system is the built-in user made
# for Kibana's own connection and only needs its password set.
call POST /_security/user/kibana_system/_password "{\"password\": \"${KIBANA_SYSTEM_PASSWORD}\"}"

# The workers read and write their own indices and aliases and check cluster health; templates
# are installed by the setup service, which runs as `elastic`.
call PUT /_security/role/report_ingest "{
  \"cluster\": [\"monitor\", \"manage_index_templates\"],
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
