#!/usr/bin/env bash
# The site API against its own document: starts a site on loopback (`cmg site init` and
# `serve` in a temporary directory, seeded with a gateway, a role, a connection point, a
# boundary group and a bulk token through the API; needs curl and jq), runs schemathesis
# with the admin token against the document the site serves (`GET /api/v1/openapi.json`),
# bounded in time, stops the site by its PID and fails on any failure. Which checks run
# and the one allowance they make: schemathesis.toml next to this file.
#
# Usage: crates/cmg-site/tests/schemathesis.sh [more schemathesis run options]
#   CMG_BIN          the cmg binary (default: target/debug/cmg, built first)
#   SCHEMATHESIS     the schemathesis command (default: schemathesis on PATH)
#   ST_MAX_TIME      seconds for the whole run (default 150)
#   ST_REPORT_DIR    keep schemathesis' ndjson report there (default: deleted)
#   ST_WORKERS       concurrent workers (default 1: hypothesis' source inspection has
#                    failed spuriously under two workers on Python 3.11)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"

target="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${CMG_BIN:-}" ]; then
  cargo build --quiet -p cmg
fi
cmg="${CMG_BIN:-$target/debug/cmg}"
st="${SCHEMATHESIS:-schemathesis}"
# The script changes directory below: a relative path would no longer name the command.
case "$st" in
  */*) st="$(cd "$(dirname "$st")" && pwd)/$(basename "$st")" ;;
esac

dir="$(mktemp -d)"
site_pid=""
cleanup() {
  if [ -n "$site_pid" ]; then
    kill "$site_pid" 2>/dev/null || true
    wait "$site_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

if ! "$cmg" site init --dir "$dir/site" --site-code ST1 >"$dir/init.log" 2>&1; then
  cat "$dir/init.log" >&2
  exit 1
fi
"$cmg" site serve --dir "$dir/site" --listen 127.0.0.1:0 >"$dir/serve.out" 2>"$dir/serve.err" &
site_pid=$!

# The bound address, from the line `site API on https://ADDR`.
url=""
for _ in $(seq 1 300); do
  url="$(sed -n 's#^site API on \(https://[^ ]*\)$#\1#p' "$dir/serve.out" | head -1)"
  [ -n "$url" ] && break
  if ! kill -0 "$site_pid" 2>/dev/null; then
    cat "$dir/serve.err" >&2
    echo "schemathesis.sh: the site did not start" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$url" ] || { echo "schemathesis.sh: no API address after 30 s" >&2; exit 1; }
token="$(cat "$dir/site/admin.token")"

# Something to show, made through the API itself: a gateway (from a demo PKI), a role
# that allows gateway traffic, a connection point, a boundary group and a bulk token.
api() { # METHOD PATH [JSON]
  curl -fsS --cacert "$dir/site/site-ca.pem" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -X "$1" "$url$2" ${3:+--data-binary "$3"} >/dev/null
}
"$cmg" cert demo-pki "$dir/pki" >"$dir/pki.json"
server_pem="$(jq -r .server_cert "$dir/pki.json")"
server_key="$(jq -r .server_key "$dir/pki.json")"
api POST /api/v1/gateways "$(jq -n --rawfile c "$server_pem" --rawfile k "$server_key" \
  '{name: "gw1", cert_pem: $c, key_pem: $k, instances: 2}')"
api POST /api/v1/roles '{"role_id": "72057594037927939", "kind": "management_point",
  "internal_url": "http://mp01.contoso.test", "mode": "enhanced_http", "allow_gateway_traffic": true}'
api POST /api/v1/connection-points '{"gateway": "gw1", "id": "cp-seed"}'
api PUT /api/v1/boundary-groups/hq '{"gateways": ["gw1"], "boundaries": ["10.1.0.0/16"]}'
api POST /api/v1/tokens '{}'

echo "== schemathesis against $url"
# From the temporary directory: schemathesis keeps its cache (.schemathesis/) in the
# working directory.
cd "$dir"
"$st" --config-file "$here/schemathesis.toml" run "$url/api/v1/openapi.json" \
  --url "$url" \
  --tls-verify "$dir/site/site-ca.pem" \
  -H "Authorization: Bearer $token" \
  --max-time "${ST_MAX_TIME:-150}" \
  --workers "${ST_WORKERS:-1}" \
  --checks all \
  --exclude-checks object_level_authorization \
  --report ndjson --report-dir "${ST_REPORT_DIR:-$dir/report}" \
  "$@"
