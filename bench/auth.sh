#!/usr/bin/env bash
# bench/auth.sh: what revocation and token checks cost (issue 3, "Performance"). In one run:
#   1. builds `cmg` (release; CMG=path skips the build) and starts the management point,
#      two gateway instances and one connection point (dialling both) as processes:
#        gw_crl  client_auth.verify_revocation = true with the demo CRLs (fail-closed)
#        gw_off  client_auth.verify_revocation = false
#      both also publish a CCM_Proxy_ServerAuth URL accepting site device tokens;
#   2. (a) full mTLS handshakes per second (`openssl s_time -new`: a new session every
#      time, so no resumption skips the client certificate check), PARALLEL clients,
#      against gw_crl and gw_off in alternation, ROUNDS times; prints crl/off;
#   3. (b) keep-alive requests/s through gateway + connection point (oha, CONNS
#      connections, 1 KiB answers): client certificate vs device token (Bearer) on
#      gw_crl, client certificate plus the token's Authorization header on gw_crl (the
#      token's request bytes without the token check), and client certificate on
#      gw_off, in alternation, ROUNDS times; prints token/cert, token/same-bytes (what
#      the check itself costs) and crl/off;
#   4. writes bench/results/auth-<timestamp>.json.
# Every process it starts is stopped on exit, failure or Ctrl-C, by the PID it recorded.
#
# Environment (defaults in brackets):
#   DURATION [5]   seconds per measured case     ROUNDS [2]    alternations per pair
#   PARALLEL [4]   s_time processes at once      CONNS [64]    oha keep-alive connections
#   WARMUP [1]     unmeasured oha seconds before each keep-alive case
#   GW_THREADS [2] CP_THREADS [2] MP_THREADS [2]   worker threads of each role
#   CMG            a built cmg binary (default: build target/release/cmg)
#   KEEP [0]       keep the state directory
#   PERF [0]       1: perf-record the gateway during round 1's certificate and token
#                  keep-alive cases into bench/results/perf-auth-{cert,token}.txt
#                  (adds load; for hot spots, not for the figures)
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
PARALLEL=${PARALLEL:-4}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-1}
GW_THREADS=${GW_THREADS:-2}
CP_THREADS=${CP_THREADS:-2}
MP_THREADS=${MP_THREADS:-2}
KEEP=${KEEP:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
SERVICE=cmg.demo.test
SITE=DEM
ROLE_ID=72057594037927939
CERT_EXT="/CCM_Proxy_MutualAuth/$ROLE_ID/SMS_MP"
TOKEN_EXT="/CCM_Proxy_ServerAuth/$ROLE_ID/SMS_MP"
GUID=6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f

log() { printf '[bench-auth %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmg-bench-auth.XXXXXX")
PIDS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    local deadline=$((SECONDS + 12))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP == 1 || $status != 0 ]]; then log "state kept in $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools
if ! command -v oha >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/oha" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v oha >/dev/null || die "oha missing: run bench/run.sh once (it installs oha 1.16.0)"
command -v openssl >/dev/null || die "openssl missing (needed for s_time)"
if [[ -z ${CMG:-} ]]; then
    log "building cmg (release)"
    (cd "$ROOT" && cargo build --release -p cmg >&2)
    CMG="${CARGO_TARGET_DIR:-$ROOT/target}/release/cmg"
fi
[[ -x $CMG ]] || die "$CMG is not executable"

# ---------------------------------------------------------------- PKI, token, ports
"$CMG" cert demo-pki "$WORK/pki" --connector cp1 >"$WORK/pki.json"
pki() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$WORK/pki.json" "$1"; }
ROOT_CA=$(pki '["root_ca"]')
INTER_CA=$(pki '["intermediate_ca"]')
SERVER_CERT=$(pki '["server_cert"]')
SERVER_KEY=$(pki '["server_key"]')
SITE_CA=$(pki '["site_ca"]')
CP_CERT=$(pki '["connectors"][0]["cert"]')
CP_KEY=$(pki '["connectors"][0]["key"]')
CLIENT_CERT=$(pki '["client_cert"]')
CLIENT_KEY=$(pki '["client_key"]')
CRL=$(pki '["crl"]')
"$CMG" token keygen "$WORK/tok" >/dev/null
TOKEN=$("$CMG" token new --key "$WORK/tok/site-signing.pem" --site-guid "$GUID" --device bench-device 2>/dev/null)

read -r MP_PORT GW1 CH1 AD1 GW2 CH2 AD2 < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

mkdir -p "$WORK/mp" "$WORK/logs"
printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s"\n' "$MP_PORT" "$WORK/mp" >"$WORK/mp.toml"

gateway_toml() { # name client channel admin revocation(true|false)
    cat <<EOF
instance = "$1"
service_name = "$SERVICE"
route_headers = false
[listen]
client = "127.0.0.1:$2"
channel = "127.0.0.1:$3"
admin = "127.0.0.1:$4"
[tls]
cert = "$SERVER_CERT"
key = "$SERVER_KEY"
[client_auth]
trusted_roots = ["$ROOT_CA"]
trusted_intermediates = ["$INTER_CA"]
verify_revocation = $5
crl_files = ["$CRL"]
[channel]
site_ca = ["$SITE_CA"]
[tokens]
site_guid = "$GUID"
site_keys = ["$WORK/tok/site-signing.pub.pem"]
[[published_url]]
prefix = "$CERT_EXT"
site = "$SITE"
max_body_bytes = 65536
[[published_url]]
prefix = "$TOKEN_EXT"
site = "$SITE"
max_body_bytes = 65536
EOF
}
gateway_toml gw_crl "$GW1" "$CH1" "$AD1" true >"$WORK/gw_crl.toml"
gateway_toml gw_off "$GW2" "$CH2" "$AD2" false >"$WORK/gw_off.toml"
cat >"$WORK/cp1.toml" <<EOF
id = "cp1"
site = "$SITE"
service_name = "$SERVICE"
gateways = ["127.0.0.1:$CH1", "127.0.0.1:$CH2"]
[tls]
cert = "$CP_CERT"
key = "$CP_KEY"
gateway_ca = ["$ROOT_CA"]
[[mapping]]
external = "$CERT_EXT"
internal = "http://127.0.0.1:$MP_PORT/SMS_MP"
[[mapping]]
external = "$TOKEN_EXT"
internal = "http://127.0.0.1:$MP_PORT/SMS_MP"
EOF

# ---------------------------------------------------------------- start the roles
start() { # name threads args...
    local name=$1 threads=$2
    shift 2
    RUST_LOG=${RUST_LOG:-warn} "$CMG" "$@" --threads "$threads" >"$WORK/logs/$name.out" 2>&1 &
    PIDS+=("$!")
    log "started $name (pid $!)"
}
start mp "$MP_THREADS" mp --config "$WORK/mp.toml"
start gw_crl "$GW_THREADS" gateway --config "$WORK/gw_crl.toml"
GW1_PID=${PIDS[-1]}
start gw_off "$GW_THREADS" gateway --config "$WORK/gw_off.toml"
GW2_PID=${PIDS[-1]}
start cp1 "$CP_THREADS" connector --config "$WORK/cp1.toml"

ready() {
    curl -fsS -o /dev/null "http://127.0.0.1:$AD1/ready" 2>/dev/null &&
        curl -fsS -o /dev/null "http://127.0.0.1:$AD2/ready" 2>/dev/null
}
ok=0
for _ in $(seq 100); do
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || { cat "$WORK/logs/"*.out >&2; die "a role exited"; }; done
    if ready; then ok=1; break; fi
    sleep 0.1
done
((ok)) || { cat "$WORK/logs/"*.out >&2; die "gateways not ready after 10 s"; }

url() { echo "https://$SERVICE:$1$2/.sms_pol?size=1024"; }
CERT_ARGS=(--cacert "$ROOT_CA" --cert "$CLIENT_CERT" --key "$CLIENT_KEY")
# One request of each kind, checked before measuring.
for p in "$GW1" "$GW2"; do
    curl -fsS -o /dev/null --resolve "$SERVICE:$p:127.0.0.1" "${CERT_ARGS[@]}" "$(url "$p" "$CERT_EXT")" ||
        die "certificate request through :$p failed"
    curl -fsS -o /dev/null --resolve "$SERVICE:$p:127.0.0.1" --cacert "$ROOT_CA" \
        -H "Authorization: Bearer $TOKEN" "$(url "$p" "$TOKEN_EXT")" || die "token request through :$p failed"
done
log "ready: gw_crl :$GW1, gw_off :$GW2, mp :$MP_PORT"

# ---------------------------------------------------------------- (a) handshakes
handshakes() { # name port -> connections per second (sum of PARALLEL clients)
    local name=$1 port=$2 i
    local pids=()
    for i in $(seq "$PARALLEL"); do
        timeout $((DURATION + 20)) openssl s_time -connect "127.0.0.1:$port" -new -time "$DURATION" \
            -cert "$CLIENT_CERT" -key "$CLIENT_KEY" -CAfile "$ROOT_CA" \
            -www "$CERT_EXT/.sms_pol?size=16" >"$WORK/$name.$i.stime" 2>&1 &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || die "s_time against :$port failed: $(cat "$WORK/$name".*.stime)"; done
    python3 - "$WORK" "$name" <<'EOF'
import glob, re, sys
total = 0.0
for f in glob.glob(f"{sys.argv[1]}/{sys.argv[2]}.*.stime"):
    m = re.search(r"(\d+) connections in (\d+) real seconds", open(f).read())
    if not m:
        sys.exit(f"no s_time summary in {f}")
    total += int(m.group(1)) / max(int(m.group(2)), 1)
print(round(total, 1))
EOF
}

# CPU time (user + system, clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# name port gateway-pid path [oha args...] -> "requests/s gateway-CPU-us-per-request"
# (the gateway's CPU per answered request moves much less than req/s with other load).
keepalive() {
    local name=$1 port=$2 gw_pid=$3 path=$4
    shift 4
    local u
    u=$(url "$port" "$path")
    local common=(--no-tui -c "$CONNS" --http-version 1.1 --connect-to "$SERVICE:$port:127.0.0.1:$port")
    ((WARMUP > 0)) && timeout $((WARMUP + 30)) oha "${common[@]}" -z "${WARMUP}s" "$@" "$u" >/dev/null
    local perf_pid=
    if [[ ${PERF:-0} == 1 && $name =~ ^ka_(cert|token)_1$ ]] && command -v perf >/dev/null; then
        perf record -F 999 -p "$gw_pid" -o "$WORK/$name.perf" -- sleep $((DURATION - 1)) >/dev/null 2>&1 &
        perf_pid=$!
        PIDS+=("$perf_pid")
    fi
    local before
    before=$(ticks "$gw_pid")
    timeout $((DURATION + 30)) oha "${common[@]}" --output-format json -z "${DURATION}s" "$@" "$u" >"$WORK/$name.json"
    if [[ -n $perf_pid ]]; then
        wait "$perf_pid" || true
        local kind=${name#ka_}
        perf report -i "$WORK/$name.perf" --no-children --sort dso,sym --stdio 2>/dev/null |
            grep -v -e '^#' -e '^$' | grep -v -e '^ *|' -e '^ *-' | head -60 >"$BENCH/results/perf-auth-${kind%_1}.txt" || true
    fi
    python3 - "$WORK/$name.json" "$before" "$(ticks "$gw_pid")" "$CLK_TCK" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
codes = {str(k): v for k, v in d.get("statusCodeDistribution", {}).items()}
if set(codes) - {"200"}:
    sys.exit(f"non-200 answers: {codes}")
cpu_us = (int(sys.argv[3]) - int(sys.argv[2])) * 1e6 / int(sys.argv[4]) / max(sum(codes.values()), 1)
print(round(d["summary"]["requestsPerSec"], 1), round(cpu_us, 2))
EOF
}

declare -A SUM CNT
record() { SUM[$1]=$(python3 -c "print(${SUM[$1]:-0} + $2)"); CNT[$1]=$((${CNT[$1]:-0} + 1)); log "$1: $2"; }
for r in $(seq "$ROUNDS"); do
    log "round $r/$ROUNDS: handshakes (${PARALLEL} x s_time -new, ${DURATION}s each)"
    record handshake_crl "$(handshakes "hs_crl_$r" "$GW1")"
    record handshake_off "$(handshakes "hs_off_$r" "$GW2")"
    log "round $r/$ROUNDS: keep-alive ($CONNS connections, ${DURATION}s each)"
    read -r rps cpu < <(keepalive "ka_cert_$r" "$GW1" "$GW1_PID" "$CERT_EXT" "${CERT_ARGS[@]}")
    record keepalive_cert_crl "$rps"; record gw_cpu_us_cert_crl "$cpu"
    read -r rps cpu < <(keepalive "ka_token_$r" "$GW1" "$GW1_PID" "$TOKEN_EXT" --cacert "$ROOT_CA" -H "Authorization: Bearer $TOKEN")
    record keepalive_token "$rps"; record gw_cpu_us_token "$cpu"
    # The token's request bytes without the token check: the same Authorization header
    # on the certificate URL, where the gateway ignores it and forwards it unchanged.
    read -r rps cpu < <(keepalive "ka_certhdr_$r" "$GW1" "$GW1_PID" "$CERT_EXT" "${CERT_ARGS[@]}" -H "Authorization: Bearer $TOKEN")
    record keepalive_cert_same_bytes "$rps"; record gw_cpu_us_cert_same_bytes "$cpu"
    read -r rps cpu < <(keepalive "ka_off_$r" "$GW2" "$GW2_PID" "$CERT_EXT" "${CERT_ARGS[@]}")
    record keepalive_cert_off "$rps"; record gw_cpu_us_cert_off "$cpu"
done

# ---------------------------------------------------------------- report
mkdir -p "$BENCH/results"
OUT="$BENCH/results/auth-$(date -u +%Y%m%dT%H%M%SZ).json"
args=()
for k in "${!SUM[@]}"; do args+=("$k=$(python3 -c "print(round(${SUM[$k]} / ${CNT[$k]}, 1))")"); done
python3 - "$OUT" "$DURATION" "$ROUNDS" "$PARALLEL" "$CONNS" "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" "${args[@]}" <<'EOF'
import json, os, sys
out, duration, rounds, parallel, conns, commit, *kv = sys.argv[1:]
m = {k: float(v) for k, v in (x.split("=", 1) for x in kv)}
ratios = {
    "handshake_crl_vs_off": round(m["handshake_crl"] / m["handshake_off"], 3),
    "keepalive_token_vs_cert": round(m["keepalive_token"] / m["keepalive_cert_crl"], 3),
    "keepalive_crl_vs_off": round(m["keepalive_cert_crl"] / m["keepalive_cert_off"], 3),
    "gateway_cpu_token_vs_cert": round(m["gw_cpu_us_token"] / m["gw_cpu_us_cert_crl"], 3),
    "keepalive_token_vs_same_bytes": round(m["keepalive_token"] / m["keepalive_cert_same_bytes"], 3),
    "gateway_cpu_token_vs_same_bytes": round(m["gw_cpu_us_token"] / m["gw_cpu_us_cert_same_bytes"], 3),
    "gateway_cpu_crl_vs_off": round(m["gw_cpu_us_cert_crl"] / m["gw_cpu_us_cert_off"], 3),
}
report = {"commit": commit, "cpus": os.cpu_count(), "duration_s": int(duration), "rounds": int(rounds),
          "s_time_clients": int(parallel), "oha_connections": int(conns), "means": m, "ratios": ratios}
json.dump(report, open(out, "w"), indent=2)
print(f"\ncmg auth benchmark  commit {commit}  {os.cpu_count()} CPUs  {rounds} rounds x {duration}s")
print(f"(a) full mTLS handshakes/s ({parallel} s_time -new clients): "
      f"CRL on {m['handshake_crl']:.0f}, off {m['handshake_off']:.0f}  ->  on/off {ratios['handshake_crl_vs_off']:.3f}")
print(f"(b) keep-alive req/s ({conns} connections, 1 KiB, gateway + connection point):")
print(f"    certificate, revocation on  {m['keepalive_cert_crl']:>9.0f}")
print(f"    device token (Bearer)       {m['keepalive_token']:>9.0f}   token/cert {ratios['keepalive_token_vs_cert']:.3f}")
print(f"    certificate + the token's Authorization header (no check) {m['keepalive_cert_same_bytes']:>9.0f}   "
      f"token/same-bytes {ratios['keepalive_token_vs_same_bytes']:.3f}")
print(f"    certificate, revocation off {m['keepalive_cert_off']:>9.0f}   on/off     {ratios['keepalive_crl_vs_off']:.3f}")
print(f"(c) gateway CPU per keep-alive request: certificate {m['gw_cpu_us_cert_crl']:.1f} us, "
      f"token {m['gw_cpu_us_token']:.1f} us (token/cert {ratios['gateway_cpu_token_vs_cert']:.3f}), "
      f"revocation off {m['gw_cpu_us_cert_off']:.1f} us (on/off {ratios['gateway_cpu_crl_vs_off']:.3f}), "
      f"same bytes as the token {m['gw_cpu_us_cert_same_bytes']:.1f} us "
      f"(token/same-bytes {ratios['gateway_cpu_token_vs_same_bytes']:.3f})")
print(f"written: {out}")
EOF
