#!/usr/bin/env bash
# bench/run.sh: the cmg benchmark (issue 2, "Performance"). In one run:
#   1. installs the load generator (oha) if it is missing;
#   2. builds `cmg` (release) and starts the management point, one gateway instance and
#      one connection point as separate processes from their config files, and the nginx
#      reference (bench/nginx.sh): one mTLS hop, and two chained hops (mTLS, then TLS with
#      keep-alive upstream), all in front of the same management point;
#   3. memory: opens idle mTLS client connections in steps (IDLE_STEPS) to the gateway,
#      then to nginx's one-hop instance, reads the server's RSS at each step and reports
#      the per-connection slope;
#   4. full mTLS handshakes per second without resumption (`openssl s_time -new`, TLS 1.3,
#      ECDSA P-256) against the gateway and nginx's one-hop instance;
#   5. measures keep-alive requests/s and p50/p99 latency, CONNS connections, DURATION
#      seconds per case, for a 1 KiB and a 64 KiB response: (a) direct to the management
#      point over plain HTTP/1.1, (n1) nginx one mTLS hop, (n2) two chained nginx hops,
#      (b) through gateway + connection point with an mTLS client certificate over
#      HTTP/1.1 (and (c) the same over HTTP/2), RUNS rounds of every case, and prints
#      the medians, with cmg's figures as ratios to direct and to nginx's, measured in
#      the same run;
#   6. writes everything to bench/results/<timestamp>.json.
# Every process it starts is stopped on exit, failure or Ctrl-C, by the PID it recorded.
#
# Environment (defaults in brackets):
#   DURATION [10]      seconds per measured case
#   RUNS [3]           rounds of the keep-alive cases; each figure is the median over the
#                      rounds (each round runs every case once, in the same order), and the
#                      table shows the spread of the proxy CPU per request
#   WARMUP [2]         seconds of unmeasured load before each case
#   CONNS [64]         keep-alive connections of the load generator
#   IDLE_STEPS [2000,6000,18000]  idle mTLS connections held at each memory step (totals;
#                      0 skips the memory measurement; the fd limit here is 20,000)
#   HS_DURATION [DURATION]  seconds of `openssl s_time -new` per handshake case (0 skips)
#   HS_PARALLEL [2]    s_time processes at once
#   NGINX [nginx on PATH]  the nginx binary; NGINX_WORKERS [GW_THREADS] its worker_processes
#   GW_THREADS [2] CP_THREADS [2] MP_THREADS [2]   data-path threads of each role (the
#                      connection point keeps one channel per thread to the gateway)
#   H2 [1]             also measure HTTP/2 through the gateway (0 skips it)
#   THROUGHPUT [1]     0: skip the keep-alive cases (and oha): memory and handshakes only,
#                      for a busy machine where only the memory figures mean anything
#   ACCESS_LOG [0]     1: roles write their log files (--log-dir), gateway access lines included
#   HEADER_READ_TIMEOUT [10s]  gateway limits.header_read_timeout
#   PERF [0]           1: perf-record gateway, connection point and MP during gateway_h1_1024
#                      (adds load; use for hot spots, not for the figures)
#   KEEP [0]           keep the state directory (PKI, configs, logs, oha output)
#   CMG [build]        a cmg binary to measure instead of building target/release/cmg
#                      (A/B runs of two builds on the same machine)
#   CARGO_PROFILE [release]
set -euo pipefail

DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
IDLE_STEPS=${IDLE_STEPS:-${IDLE_CONNS:-2000,6000,18000}}
[[ $IDLE_STEPS == 0 ]] && IDLE_STEPS=
IDLE_MAX=0
for n in ${IDLE_STEPS//,/ }; do ((n > IDLE_MAX)) && IDLE_MAX=$n; done
HS_DURATION=${HS_DURATION:-$DURATION}
HS_PARALLEL=${HS_PARALLEL:-2}
GW_THREADS=${GW_THREADS:-2}
CP_THREADS=${CP_THREADS:-2}
MP_THREADS=${MP_THREADS:-2}
H2=${H2:-1}
THROUGHPUT=${THROUGHPUT:-1}
KEEP=${KEEP:-0}
ACCESS_LOG=${ACCESS_LOG:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
SERVICE=cmg.demo.test
SITE=DEM
ROLE_ID=72057594037927939
EXT="/CCM_Proxy_MutualAuth/$ROLE_ID"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a whole number >= 1 (got '$RUNS')"

# ---------------------------------------------------------------- processes and cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmg-bench.XXXXXX")
PIDS=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # Bounded wait (the gateway drains for at most its grace period), then SIGKILL.
    local deadline=$((SECONDS + 12))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP == 1 || $status != 0 ]]; then
        log "state kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- file descriptors
# 10,000 idle connections need more than the usual 1024 descriptors, in the gateway and
# in the opener. Raise the soft limit as far as the hard limit allows (at most 65536).
hard=$(ulimit -Hn)
want=65536
if [[ $hard != unlimited ]] && ((hard < want)); then want=$hard; fi
ulimit -n "$want" || die "cannot raise the open-file limit to $want"
if ((IDLE_MAX > 0 && $(ulimit -n) < IDLE_MAX + 200)); then
    die "open-file limit $(ulimit -n) too low for IDLE_STEPS=$IDLE_STEPS"
fi

# ---------------------------------------------------------------- load generator
if ((THROUGHPUT)); then
    OHA_VERSION=1.16.0
    if ! command -v oha >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/oha" ]]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v oha >/dev/null 2>&1; then
        log "installing oha $OHA_VERSION (cargo install --locked)"
        cargo install --locked --version "$OHA_VERSION" oha >&2
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    oha --help | grep -q -- '--cert ' || die "this oha has no --cert (client certificate); need oha >= $OHA_VERSION"
    log "load generator: $(oha --version)"
fi

# ---------------------------------------------------------------- build
if [[ -n ${CMG:-} ]]; then
    log "using the given binary CMG=$CMG (no build)"
else
    log "building cmg (release)"
    (cd "$ROOT" && cargo build --release -p cmg >&2)
    CMG="${CARGO_TARGET_DIR:-$ROOT/target}/release/cmg"
fi
[[ -x $CMG ]] || die "$CMG missing after the build"

# ---------------------------------------------------------------- PKI, ports, configs
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

# Four free loopback ports, chosen by the kernel (bound together so they differ).
read -r MP_PORT GW_PORT CH_PORT ADMIN_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

mkdir -p "$WORK/mp" "$WORK/logs"
cat >"$WORK/mp.toml" <<EOF
# Reference management point (an internal role): plain HTTP on loopback.
listen = "127.0.0.1:$MP_PORT"
data_dir = "$WORK/mp"
EOF

cat >"$WORK/gw1.toml" <<EOF
# Gateway instance gw1.
instance = "gw1"
service_name = "$SERVICE"
route_headers = false

[listen]
client = "127.0.0.1:$GW_PORT"
channel = "127.0.0.1:$CH_PORT"
admin = "127.0.0.1:$ADMIN_PORT"

[tls]
cert = "$SERVER_CERT"
key = "$SERVER_KEY"
min_version = "1.2"

[client_auth]
trusted_roots = ["$ROOT_CA"]
trusted_intermediates = ["$INTER_CA"]
# Revocation checking on (the default), with the demo CRLs as files: a handshake
# checks the chain against them; keep-alive requests never parse a CRL.
crl_files = ["$CRL"]

# Defaults: header_read_timeout 10 s (from the first byte of a head); idle_timeout
# raised from 120 s to 600 s (as nginx's keepalive_timeout in the bench), so the idle
# connections of the first memory step are still held when the last step is read.
[limits]
header_read_timeout = "${HEADER_READ_TIMEOUT:-10s}"
idle_timeout = "600s"

[channel]
site_ca = ["$SITE_CA"]
ping_interval = "5000ms"
ping_timeout = "5000ms"
EOF
for seg_max in CCM_System:16777216 CCM_Incoming:67108864 SMS_MP:65536; do
    cat >>"$WORK/gw1.toml" <<EOF

[[published_url]]
prefix = "$EXT/${seg_max%%:*}"
site = "$SITE"
max_body_bytes = ${seg_max##*:}
EOF
done

CP_GATEWAYS="\"127.0.0.1:$CH_PORT\""
cat >"$WORK/cp1.toml" <<EOF
# Connection point cp1.
id = "cp1"
site = "$SITE"
service_name = "$SERVICE"
gateways = [$CP_GATEWAYS]

[tls]
cert = "$CP_CERT"
key = "$CP_KEY"
gateway_ca = ["$ROOT_CA"]

[timing]
ping_interval = "5000ms"
ping_timeout = "5000ms"
backoff_base = "100ms"
backoff_max = "2s"
EOF
for seg in CCM_System CCM_Incoming SMS_MP; do
    cat >>"$WORK/cp1.toml" <<EOF

[[mapping]]
external = "$EXT/$seg"
internal = "http://127.0.0.1:$MP_PORT/$seg"
EOF
done

# ---------------------------------------------------------------- start the roles
start() { # name threads args...
    local name=$1 threads=$2
    shift 2
    local logs=()
    ((ACCESS_LOG)) && logs=(--log-dir "$WORK/logs/$name")
    RUST_LOG=${RUST_LOG:-warn} "$CMG" "$@" --threads "$threads" "${logs[@]}" >"$WORK/logs/$name.out" 2>&1 &
    PIDS+=("$!")
    log "started $name (pid $!, $threads thread(s))"
}
start mp "$MP_THREADS" mp --config "$WORK/mp.toml"
MP_PID=${PIDS[-1]}
start gw1 "$GW_THREADS" gateway --config "$WORK/gw1.toml"
GW_PID=${PIDS[-1]}
start cp1 "$CP_THREADS" connector --config "$WORK/cp1.toml"
CP_PID=${PIDS[-1]}

alive() { kill -0 "$1" 2>/dev/null || { cat "$WORK/logs/"*.out >&2; die "$2 exited"; }; }
ready=0
for _ in $(seq 100); do
    alive "$MP_PID" mp; alive "$GW_PID" gateway; alive "$CP_PID" connector
    if curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/ready" 2>/dev/null &&
        curl -fsS -o /dev/null "http://127.0.0.1:$MP_PORT/SMS_MP/.sms_pol?size=1" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
((ready)) || { cat "$WORK/logs/"*.out >&2; die "roles not ready after 10 s"; }
log "ready: mp :$MP_PORT, gateway :$GW_PORT (channel :$CH_PORT, admin :$ADMIN_PORT)"

# shellcheck source=bench/nginx.sh
source "$BENCH/nginx.sh"
NGINX1="https://$SERVICE:$NGX1_PORT$EXT/SMS_MP/.sms_pol"
NGINX2="https://$SERVICE:$NGX2_PORT$EXT/SMS_MP/.sms_pol"
for url in "$NGINX1" "$NGINX2"; do
    port=${url#https://$SERVICE:}
    port=${port%%/*}
    got=
    for _ in $(seq 50); do
        got=$(curl -fsS --resolve "$SERVICE:$port:127.0.0.1" --cacert "$ROOT_CA" \
            --cert "$CLIENT_CERT" --key "$CLIENT_KEY" "$url?size=1024" 2>/dev/null | wc -c) || true
        [[ $got == 1024 ]] && break
        sleep 0.1
    done
    [[ $got == 1024 ]] || { cat "$WORK"/ngx*/logs/error.log "$WORK"/logs/ngx*.out >&2; die "nginx at :$port answered $got bytes for size=1024"; }
done
NGX1_TLS_ARGS=(--cacert "$ROOT_CA" --cert "$CLIENT_CERT" --key "$CLIENT_KEY"
    --connect-to "$SERVICE:$NGX1_PORT:127.0.0.1:$NGX1_PORT")
NGX2_TLS_ARGS=(--cacert "$ROOT_CA" --cert "$CLIENT_CERT" --key "$CLIENT_KEY"
    --connect-to "$SERVICE:$NGX2_PORT:127.0.0.1:$NGX2_PORT")
log "ready: nginx one hop :$NGX1_PORT, two hops :$NGX2_PORT (-> :$NGX2B_PORT)"

DIRECT="http://127.0.0.1:$MP_PORT/SMS_MP/.sms_pol"
GATEWAY="https://$SERVICE:$GW_PORT$EXT/SMS_MP/.sms_pol"
TLS_ARGS=(--cacert "$ROOT_CA" --cert "$CLIENT_CERT" --key "$CLIENT_KEY"
    --connect-to "$SERVICE:$GW_PORT:127.0.0.1:$GW_PORT")

# One request through the whole chain with curl, checked byte for byte by size.
got=$(curl -fsS --resolve "$SERVICE:$GW_PORT:127.0.0.1" --cacert "$ROOT_CA" \
    --cert "$CLIENT_CERT" --key "$CLIENT_KEY" "$GATEWAY?size=1024" | wc -c)
[[ $got == 1024 ]] || die "gateway answered $got bytes for size=1024"

# Resident memory (KiB) of a set of processes (a server and, for nginx, its workers).
rss_kib() { # pid...
    local pid total=0
    for pid in "$@"; do total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"))); done
    echo "$total"
}

# ---------------------------------------------------------------- idle connections
# measure_idle NAME PORT PIDS-FUNCTION: opens the IDLE_STEPS connections in steps against
# PORT, reads the RSS of the processes PIDS-FUNCTION prints before and at every step, and
# writes $WORK/idle-NAME.json (points and the least-squares slope in KiB per connection).
measure_idle() {
    local name=$1 port=$2 pids_fn=$3 out="$WORK/idle-$1.out" step=0 n
    log "memory ($name): idle mTLS connections in steps $IDLE_STEPS"
    sleep 1
    local points=("0:$(rss_kib $($pids_fn)):0")
    python3 "$BENCH/idle_conns.py" --port "$port" --sni "$SERVICE" \
        --cacert "$ROOT_CA" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" \
        --path "$EXT/SMS_MP/.sms_pol?size=16" --steps "$IDLE_STEPS" --hold 300 \
        >"$out" 2>"$WORK/idle-$name.err" &
    local idle_pid=$!
    PIDS+=("$idle_pid")
    for n in ${IDLE_STEPS//,/ }; do
        step=$((step + 1))
        for _ in $(seq 3000); do # 300 s at most per step (the idle timeouts are 600 s)
            (($(grep -c '"phase": "open"' "$out" 2>/dev/null || true) >= step)) && break
            kill -0 "$idle_pid" 2>/dev/null || { cat "$WORK/idle-$name.err" >&2; die "idle_conns.py exited"; }
            sleep 0.1
        done
        (($(grep -c '"phase": "open"' "$out" || true) >= step)) || die "$n idle connections to $name not open after 300 s"
        sleep 2 # let the handshake buffers go back to the allocator
        points+=("$n:$(rss_kib $($pids_fn)):$(ss -Htn state established "( sport = :$port )" | wc -l)")
        kill -USR1 "$idle_pid"
    done
    for _ in $(seq 100); do grep -q '"phase": "done"' "$out" && break; sleep 0.1; done
    wait "$idle_pid" || true
    python3 - "$out" "$name" "${points[@]}" >"$WORK/idle-$name.json" <<'EOF'
import json, sys
out, name, *points = sys.argv[1:]
lines = [json.loads(l) for l in open(out) if l.strip()]
opens = [l for l in lines if l["phase"] == "open"]
done = next((l for l in lines if l["phase"] == "done"), {})
rows = []
for (req, rss, est), o in zip((p.split(":") for p in points[1:]), opens):
    # What the server really holds: the opener's open count, at most what ss sees.
    rows.append({"requested": int(req), "open": min(o["open"], int(est)), "established": int(est),
                 "failed": o["failed"], "errors": o["errors"], "open_seconds": o["seconds"],
                 "rss_kib": int(rss)})
base = int(points[0].split(":")[1])
# The slope between the steps (the first connections also pay one-off costs: allocator
# arenas, tables); with one step, from the RSS before.
xs = [r["open"] for r in rows]
ys = [r["rss_kib"] for r in rows]
if len(rows) < 2:
    xs, ys = [0] + xs, [base] + ys
n, mx, my = len(xs), sum(xs) / len(xs), sum(ys) / len(ys)
sxx = sum((x - mx) ** 2 for x in xs)
slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else None
print(json.dumps({
    "server": name, "rss_before_kib": base, "steps": rows,
    "still_open_after_measurement": done.get("still_open"),
    # Least-squares slope over the steps: KiB per idle connection.
    "kib_per_connection": round(slope, 2) if slope is not None else None,
}))
EOF
    log "memory ($name): $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["kib_per_connection"], "KiB per connection;", [(s["open"], s["rss_kib"]) for s in d["steps"]])' "$WORK/idle-$name.json")"
    sleep 2 # the server notices the closed connections
}
gateway_pids() { echo "$GW_PID"; }
nginx1_pids() { nginx_pids "$NGX1_PID"; }
MEMORY_JSON=null
if [[ -n $IDLE_STEPS ]]; then
    measure_idle gateway "$GW_PORT" gateway_pids
    measure_idle nginx1 "$NGX1_PORT" nginx1_pids
    MEMORY_JSON=$(python3 -c 'import json,sys; print(json.dumps({n: json.load(open(f"{sys.argv[1]}/idle-{n}.json")) for n in ("gateway", "nginx1")}))' "$WORK")
fi

# ---------------------------------------------------------------- handshakes
# Full mTLS handshakes per second, HS_PARALLEL `openssl s_time -new` processes for
# HS_DURATION seconds: -new gives every connection a new SSL object without a session to
# offer, so neither server can resume (cmg's session cache and tickets stay on, as in
# production; nginx's are off); each connection sends one small proxied request (-www), so
# the count includes the server's verification of the client certificate. TLS 1.3 with
# the demo PKI's ECDSA P-256 keys.
HANDSHAKES_JSON=null
handshakes() { # name port
    local name=$1 port=$2 i pids=()
    log "handshakes ($name): ${HS_PARALLEL} x openssl s_time -new -tls1_3 for ${HS_DURATION}s"
    for i in $(seq "$HS_PARALLEL"); do
        timeout $((HS_DURATION + 20)) openssl s_time -connect "127.0.0.1:$port" -new -tls1_3 \
            -time "$HS_DURATION" -cert "$CLIENT_CERT" -key "$CLIENT_KEY" -CAfile "$ROOT_CA" \
            -www "$EXT/SMS_MP/.sms_pol?size=16" >"$WORK/hs-$name.$i.stime" 2>&1 &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || die "s_time against $name failed: $(cat "$WORK/hs-$name".*.stime)"; done
}
if ((HS_DURATION > 0)); then
    handshakes gateway "$GW_PORT"
    handshakes nginx1 "$NGX1_PORT"
    HANDSHAKES_JSON=$(python3 - "$WORK" <<'EOF'
import glob, json, re, sys
res = {}
for name in ("gateway", "nginx1"):
    total = 0.0
    for f in glob.glob(f"{sys.argv[1]}/hs-{name}.*.stime"):
        m = re.search(r"(\d+) connections in (\d+) real seconds", open(f).read())
        if not m:
            sys.exit(f"no s_time summary in {f}")
        total += int(m.group(1)) / max(int(m.group(2)), 1)
    res[name] = round(total, 1)
print(json.dumps(res))
EOF
)
    log "handshakes per second: $HANDSHAKES_JSON"
fi

# ---------------------------------------------------------------- throughput
mkdir -p "$BENCH/results"
# Before each case: the channel must be up. (Clients that drop in-flight requests, as the
# load generator does at its deadline, reset channel streams; see bench/README.md.)
wait_ready() {
    local i
    for i in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/ready" 2>/dev/null && return 0
        sleep 0.1
    done
    die "gateway not ready (no channel) after 10 s"
}

# CPU time (user + system, clock ticks) used so far by the gateway, the connection point,
# the MP, nginx's one-hop instance and its two chained instances (master and workers):
# per-request CPU cost is less sensitive than req/s to other load on the machine, so it
# is reported next to the ratio.
ticks_of() { # pid...
    local pid total=0
    for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
    echo "$total"
}
cpu_ticks() {
    echo "$(ticks_of "$GW_PID") $(ticks_of "$CP_PID") $(ticks_of "$MP_PID")" \
        "$(ticks_of $(nginx_pids "$NGX1_PID")) $(ticks_of $(nginx_pids "$NGX2A_PID" "$NGX2B_PID"))"
}
CLK_TCK=$(getconf CLK_TCK)

run_oha() { # name round url http-version(1.1|2) [extra oha args...]
    local name=$1 round=$2 url=$3 ver=$4
    shift 4
    local proto=(--http-version 1.1)
    [[ $ver == 2 ]] && proto=(--http2)
    # The reference MP journals every request, about 1.5 KB each: several GB over a
    # run. Emptied before each case (the MP appends), so the disk a run needs stays
    # bounded.
    : >"$WORK/mp/journal.jsonl"
    if ((WARMUP > 0)); then
        timeout $((WARMUP + 30)) oha --no-tui -z "${WARMUP}s" -c "$CONNS" "${proto[@]}" "$@" "$url" >/dev/null
    fi
    wait_ready
    log "measuring $name for ${DURATION}s (round $round of $RUNS)"
    local perf_pid=
    if [[ ${PERF:-0} == 1 && $name == gateway_h1_1024 && $round == 1 ]] && command -v perf >/dev/null; then
        perf record -F 999 -p "$GW_PID,$CP_PID,$MP_PID" -o "$WORK/perf.data" -- sleep $((DURATION - 1)) \
            >"$WORK/perf.out" 2>&1 &
        perf_pid=$!
        PIDS+=("$perf_pid")
    fi
    local cpu_before
    cpu_before=$(cpu_ticks)
    timeout $((DURATION + 30)) oha --no-tui --output-format json -z "${DURATION}s" -c "$CONNS" \
        "${proto[@]}" "$@" "$url" >"$WORK/$name.r$round.json"
    echo "$cpu_before $(cpu_ticks)" >"$WORK/$name.r$round.cpu"
    if [[ -n $perf_pid ]]; then
        wait "$perf_pid" || true
        local role pid out="$BENCH/results/perf-$name.txt"
        : >"$out"
        for role in gw1:$GW_PID cp1:$CP_PID mp:$MP_PID; do
            pid=${role#*:}
            printf '=== %s (pid %s): %s samples\n' "${role%%:*}" "$pid" \
                "$(perf script -i "$WORK/perf.data" --pid "$pid" -F pid 2>/dev/null | wc -l)" >>"$out"
            perf report -i "$WORK/perf.data" --pid "$pid" --no-children --sort dso,sym --stdio \
                2>/dev/null | grep -v -e '^#' -e '^$' | head -25 >>"$out" || true
        done
        log "profile of $name: bench/results/perf-$name.txt"
    fi
}

# Every case RUNS times, round by round (a round runs each case of a size once, so a
# slow minute of the machine falls on every row rather than on one); report.py takes
# the median of each figure over the rounds.
CASES=()
((THROUGHPUT)) && for size in 1024 65536; do
    CASES+=("direct_h1_$size" "nginx1_h1_$size" "nginx2_h1_$size" "gateway_h1_$size")
    ((H2)) && CASES+=("gateway_h2_$size")
    for round in $(seq "$RUNS"); do
        run_oha "direct_h1_$size" "$round" "$DIRECT?size=$size" 1.1
        run_oha "nginx1_h1_$size" "$round" "$NGINX1?size=$size" 1.1 "${NGX1_TLS_ARGS[@]}"
        run_oha "nginx2_h1_$size" "$round" "$NGINX2?size=$size" 1.1 "${NGX2_TLS_ARGS[@]}"
        run_oha "gateway_h1_$size" "$round" "$GATEWAY?size=$size" 1.1 "${TLS_ARGS[@]}"
        if ((H2)); then
            run_oha "gateway_h2_$size" "$round" "$GATEWAY?size=$size" 2 "${TLS_ARGS[@]}"
        fi
    done
done

# ---------------------------------------------------------------- report
mkdir -p "$BENCH/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$BENCH/results/$STAMP.json"
# Channels the connection point lost during the run (each one fails in-flight requests).
CHANNEL_LOSSES=$(grep -c "channel lost" "$WORK/logs/cp1.out" || true)
python3 "$BENCH/report.py" "$WORK" "$OUT" "$CLK_TCK" "$MEMORY_JSON" "$HANDSHAKES_JSON" "$CHANNEL_LOSSES" \
    "$DURATION" "$RUNS" "$CONNS" "$GW_THREADS" "$CP_THREADS" "$MP_THREADS" "$NGINX_WORKERS" "$( ((THROUGHPUT)) && oha --version || echo 'no oha (THROUGHPUT=0)')" \
    "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$("$NGINX" -v 2>&1)" "${CASES[@]}"
