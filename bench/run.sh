#!/usr/bin/env bash
# bench/run.sh: the cmg benchmark (issue 2, "Performance"). In one run:
#   1. installs the load generator (oha) if it is missing;
#   2. builds `cmg` (release) and starts the management point, one gateway instance and
#      one connection point as separate processes from their config files;
#   3. measures the memory of the gateway holding IDLE_CONNS idle mTLS client connections;
#   4. measures keep-alive requests/s and p50/p99 latency, CONNS connections, DURATION
#      seconds per case, for a 1 KiB and a 64 KiB response: (a) direct to the management
#      point over plain HTTP/1.1, (b) through gateway + connection point with an mTLS
#      client certificate over HTTP/1.1 (and (c) the same over HTTP/2), and prints b/a;
#   5. writes everything to bench/results/<timestamp>.json.
# Every process it starts is stopped on exit, failure or Ctrl-C, by the PID it recorded.
#
# Environment (defaults in brackets):
#   DURATION [10]      seconds per measured case
#   WARMUP [2]         seconds of unmeasured load before each case
#   CONNS [64]         keep-alive connections of the load generator
#   IDLE_CONNS [10000] idle mTLS connections for the memory measurement (0 skips it)
#   GW_THREADS [2] CP_THREADS [2] MP_THREADS [2]   data-path threads of each role (the
#                      connection point keeps one channel per thread to the gateway)
#   H2 [1]             also measure HTTP/2 through the gateway (0 skips it)
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
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}
GW_THREADS=${GW_THREADS:-2}
CP_THREADS=${CP_THREADS:-2}
MP_THREADS=${MP_THREADS:-2}
H2=${H2:-1}
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
if ((IDLE_CONNS > 0 && $(ulimit -n) < IDLE_CONNS + 200)); then
    die "open-file limit $(ulimit -n) too low for IDLE_CONNS=$IDLE_CONNS"
fi

# ---------------------------------------------------------------- load generator
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

# ---------------------------------------------------------------- build
if [[ -n ${CMG:-} ]]; then
    log "using the given binary CMG=$CMG (no build)"
else
    log "building cmg (release)"
    (cd "$ROOT" && cargo build --release -p cmg >&2)
    CMG="$ROOT/target/release/cmg"
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

# Defaults: header_read_timeout 10 s (from the first byte of a head), idle_timeout
# 120 s, so the 10,000 idle connections are held while the memory is read.
[limits]
header_read_timeout = "${HEADER_READ_TIMEOUT:-10s}"

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

DIRECT="http://127.0.0.1:$MP_PORT/SMS_MP/.sms_pol"
GATEWAY="https://$SERVICE:$GW_PORT$EXT/SMS_MP/.sms_pol"
TLS_ARGS=(--cacert "$ROOT_CA" --cert "$CLIENT_CERT" --key "$CLIENT_KEY"
    --connect-to "$SERVICE:$GW_PORT:127.0.0.1:$GW_PORT")

# One request through the whole chain with curl, checked byte for byte by size.
got=$(curl -fsS --resolve "$SERVICE:$GW_PORT:127.0.0.1" --cacert "$ROOT_CA" \
    --cert "$CLIENT_CERT" --key "$CLIENT_KEY" "$GATEWAY?size=1024" | wc -c)
[[ $got == 1024 ]] || die "gateway answered $got bytes for size=1024"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ---------------------------------------------------------------- idle connections
MEMORY_JSON=null
if ((IDLE_CONNS > 0)); then
    log "memory: opening $IDLE_CONNS idle mTLS connections to the gateway"
    sleep 1
    before=$(rss_kib "$GW_PID")
    python3 "$BENCH/idle_conns.py" --port "$GW_PORT" --sni "$SERVICE" \
        --cacert "$ROOT_CA" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" \
        --path "$EXT/SMS_MP/.sms_pol?size=16" -n "$IDLE_CONNS" --hold 90 \
        >"$WORK/idle.out" 2>"$WORK/idle.err" &
    IDLE_PID=$!
    PIDS+=("$IDLE_PID")
    for _ in $(seq 900); do # 90 s at most (the gateway's idle timeout is 120 s)
        grep -q '"phase": "open"' "$WORK/idle.out" 2>/dev/null && break
        kill -0 "$IDLE_PID" 2>/dev/null || { cat "$WORK/idle.err" >&2; die "idle_conns.py exited"; }
        sleep 0.1
    done
    grep -q '"phase": "open"' "$WORK/idle.out" || die "idle connections not open after 90 s"
    sleep 2 # let the handshake buffers go back to the allocator
    after=$(rss_kib "$GW_PID")
    established=$(ss -Htn state established "( sport = :$GW_PORT )" | wc -l)
    kill -USR1 "$IDLE_PID"
    for _ in $(seq 100); do grep -q '"phase": "done"' "$WORK/idle.out" && break; sleep 0.1; done
    wait "$IDLE_PID" || true
    MEMORY_JSON=$(python3 - "$WORK/idle.out" "$before" "$after" "$established" "$IDLE_CONNS" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
opened = next(l for l in lines if l["phase"] == "open")
done = next((l for l in lines if l["phase"] == "done"), {})
before, after, est, n = (int(x) for x in sys.argv[2:6])
held = min(opened["open"], est)  # what the gateway really holds
print(json.dumps({
    "connections_requested": n, "connections_open": held, "failed": opened["failed"],
    "errors": opened["errors"], "open_seconds": opened["seconds"],
    "established_at_gateway": est, "still_open_after_measurement": done.get("still_open"),
    "gateway_rss_before_kib": before, "gateway_rss_after_kib": after,
    "kib_per_connection": round((after - before) / held, 2) if held else None,
}))
EOF
)
    log "memory: $MEMORY_JSON"
    sleep 2 # the gateway notices the closed connections
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

# CPU time (user + system, clock ticks) used so far by the gateway, the connection point
# and the MP: per-request CPU cost is less sensitive than req/s to other load on the
# machine, so it is reported next to the ratio.
cpu_ticks() {
    local pid
    for pid in "$GW_PID" "$CP_PID" "$MP_PID"; do
        awk '{print $14 + $15}' "/proc/$pid/stat"
    done | paste -sd' '
}
CLK_TCK=$(getconf CLK_TCK)

run_oha() { # name url http-version(1.1|2) [extra oha args...]
    local name=$1 url=$2 ver=$3
    shift 3
    local proto=(--http-version 1.1)
    [[ $ver == 2 ]] && proto=(--http2)
    if ((WARMUP > 0)); then
        timeout $((WARMUP + 30)) oha --no-tui -z "${WARMUP}s" -c "$CONNS" "${proto[@]}" "$@" "$url" >/dev/null
    fi
    wait_ready
    log "measuring $name for ${DURATION}s"
    local perf_pid=
    if [[ ${PERF:-0} == 1 && $name == gateway_h1_1024 ]] && command -v perf >/dev/null; then
        perf record -F 999 -p "$GW_PID,$CP_PID,$MP_PID" -o "$WORK/perf.data" -- sleep $((DURATION - 1)) \
            >"$WORK/perf.out" 2>&1 &
        perf_pid=$!
        PIDS+=("$perf_pid")
    fi
    local cpu_before
    cpu_before=$(cpu_ticks)
    timeout $((DURATION + 30)) oha --no-tui --output-format json -z "${DURATION}s" -c "$CONNS" \
        "${proto[@]}" "$@" "$url" >"$WORK/$name.json"
    echo "$cpu_before $(cpu_ticks)" >"$WORK/$name.cpu"
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

CASES=()
for size in 1024 65536; do
    run_oha "direct_h1_$size" "$DIRECT?size=$size" 1.1
    run_oha "gateway_h1_$size" "$GATEWAY?size=$size" 1.1 "${TLS_ARGS[@]}"
    CASES+=("direct_h1_$size" "gateway_h1_$size")
    if ((H2)); then
        run_oha "gateway_h2_$size" "$GATEWAY?size=$size" 2 "${TLS_ARGS[@]}"
        CASES+=("gateway_h2_$size")
    fi
done

# ---------------------------------------------------------------- report
mkdir -p "$BENCH/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$BENCH/results/$STAMP.json"
# Channels the connection point lost during the run (each one fails in-flight requests).
CHANNEL_LOSSES=$(grep -c "channel lost" "$WORK/logs/cp1.out" || true)
python3 - "$WORK" "$OUT" "$CLK_TCK" "$MEMORY_JSON" "$CHANNEL_LOSSES" "$DURATION" "$CONNS" "$GW_THREADS" "$CP_THREADS" "$MP_THREADS" \
    "$(oha --version)" "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" "${CASES[@]}" <<'EOF'
import json, os, platform, sys
work, out, clk, memory, losses, duration, conns, gwt, cpt, mpt, oha, commit, *cases = sys.argv[1:]
clk = int(clk)
results = {}
for name in cases:
    d = json.load(open(os.path.join(work, name + ".json")))
    s, p = d["summary"], d["latencyPercentiles"]
    codes = {str(k): v for k, v in d.get("statusCodeDistribution", {}).items()}
    results[name] = {
        "requests_per_sec": round(s["requestsPerSec"], 1),
        "p50_ms": round(p["p50"] * 1000, 3),
        "p99_ms": round(p["p99"] * 1000, 3),
        "success_rate": s["successRate"],
        "status_codes": codes,
        # oha -z cancels the requests in flight at the deadline: not failures.
        "errors": {k: v for k, v in d.get("errorDistribution", {}).items()
                   if k != "aborted due to deadline"},
    }
    # CPU microseconds per answered request, per role (from /proc/<pid>/stat).
    ticks = [int(x) for x in open(os.path.join(work, name + ".cpu")).read().split()]
    answered = sum(codes.values()) or 1
    results[name]["cpu_us_per_request"] = {
        role: round((ticks[i + 3] - ticks[i]) * 1e6 / clk / answered, 1)
        for i, role in enumerate(("gateway", "connector", "mp"))
    }
ratios = {}
for size in ("1024", "65536"):
    a = results[f"direct_h1_{size}"]["requests_per_sec"]
    for via in ("gateway_h1", "gateway_h2"):
        if f"{via}_{size}" in results:
            ratios[f"{via}_{size}"] = round(results[f"{via}_{size}"]["requests_per_sec"] / a, 3)
report = {
    "when_utc": os.path.basename(out)[:-5], "commit": commit, "load_generator": oha,
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": next(
        (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")},
    "settings": {"duration_s": int(duration), "connections": int(conns),
                 "threads": {"gateway": int(gwt), "connector": int(cpt), "mp": int(mpt)}},
    "results": results, "ratio_vs_direct": ratios, "channel_losses": int(losses), "idle_memory": json.loads(memory),
}
with open(out, "w") as f:
    json.dump(report, f, indent=2)

print(f"\ncmg benchmark  {report['when_utc']}  commit {commit}  {oha}  "
      f"{os.cpu_count()} CPUs  {conns} connections  {duration}s per case")
print(f"threads: gateway {gwt}, connector {cpt}, mp {mpt}\n")
print(f"{'case':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'b/a':>8}  {'CPU us/req gw/cp/mp':<22}status")
bad = False
for name in cases:
    r = results[name]
    ratio = ratios.get(name)
    codes = ",".join(f"{k}:{v}" for k, v in r["status_codes"].items())
    if set(r["status_codes"]) - {"200"} or r["errors"]:
        bad = True
        codes += f" errors:{r['errors']}"
    print(f"{name:<22}{r['requests_per_sec']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
          f"{(f'{ratio:.3f}' if ratio else ''):>8}  "
          f"{'/'.join(str(v) for v in r['cpu_us_per_request'].values()):<22}{codes}")
m = report["idle_memory"]
if m:
    print(f"\nidle mTLS connections: {m['connections_open']}/{m['connections_requested']} open "
          f"({m['established_at_gateway']} established at the gateway, "
          f"{m['still_open_after_measurement']} still open after), gateway RSS "
          f"{m['gateway_rss_before_kib']} -> {m['gateway_rss_after_kib']} KiB: "
          f"{m['kib_per_connection']} KiB per connection")
if int(losses):
    print(f"\nchannel lost {losses} time(s) during the run (connection point log)")
print(f"\nwritten: {out}")
if bad:
    print("WARNING: some responses were not 200 or failed; the figures above are suspect")
    sys.exit(1)
EOF
