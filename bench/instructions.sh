#!/usr/bin/env bash
# bench/instructions.sh: user-space instructions per proxied request, gateway and
# connection point, counted by valgrind's callgrind: a figure that does not move with the
# machine's speed or its other load (which the CPU time of bench/run.sh does, by 10 % from
# one run to the next here), for A/B comparisons of two builds of the request path.
#
#   bench/instructions.sh BIN [BIN...]
#
# For each cmg binary: starts the MP natively and the gateway and connection point under
# callgrind (the configs and PKI of bench/run.sh, made once by a run of it with nothing
# measured), sends N1 then N2 requests of 1 KiB through both hops with oha (8 keep-alive
# mTLS connections, so the handshakes are the same in both), and prints
# (instructions at N2 - instructions at N1) / (N2 - N1) per role: start-up and
# handshakes cancel out. Kernel work (the TCP stack, which is about half of the CPU
# time per request) is not counted: compare it with bench/run.sh.
#
# Environment: N1 [500], N2 [2500], SIZE [1024], STATE [made here: a bench/run.sh
# state directory kept with KEEP=1].
set -euo pipefail

(($# >= 1)) || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
N1=${N1:-500}
N2=${N2:-2500}
SIZE=${SIZE:-1024}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install valgrind)" >&2; exit 1; }
command -v oha >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
command -v oha >/dev/null || { echo "oha missing: run bench/run.sh once (it installs it)" >&2; exit 1; }

if [[ -z ${STATE:-} ]]; then
    # The configs, PKI and ports of one bench run, nothing measured.
    STATE=$(KEEP=1 THROUGHPUT=0 IDLE_STEPS=0 HS_DURATION=0 CMG="$1" "$ROOT/bench/run.sh" 2>&1 |
        sed -n 's/.*state kept in \(.*\)$/\1/p' | tail -1)
    [[ -d $STATE ]] || { echo "bench/run.sh kept no state directory" >&2; exit 1; }
    MADE_STATE=1
fi
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ ${MADE_STATE:-0} == 1 ]]; then rm -rf "$STATE"; fi
}
trap cleanup EXIT

port_of() { grep "^$1 " "$STATE/gw1.toml" | grep -o ':[0-9]*"' | tr -d ':"'; }
GW_PORT=$(port_of client)
ADMIN_PORT=$(port_of admin)
EXT=$(grep -o '"/CCM_Proxy_MutualAuth/[0-9]*' "$STATE/cp1.toml" | head -1 | tr -d '"')
URL="https://cmg.demo.test:$GW_PORT$EXT/SMS_MP/.sms_pol?size=$SIZE"
TLS=(--cacert "$STATE/pki/root-ca.pem" --cert "$STATE/pki/client.pem" --key "$STATE/pki/client.key"
    --connect-to "cmg.demo.test:$GW_PORT:127.0.0.1:$GW_PORT")

# count BIN N: instructions of the gateway and the connection point (two numbers) after N
# requests.
count() {
    local bin=$1 n=$2 out
    out=$(mktemp -d)
    RUST_LOG=warn "$bin" mp --config "$STATE/mp.toml" --threads 2 >"$out/mp.log" 2>&1 &
    local mp=$!
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out/gw.%p" \
        "$bin" gateway --config "$STATE/gw1.toml" --threads 2 >"$out/gw.log" 2>&1 &
    local gw=$!
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out/cp.%p" \
        "$bin" connector --config "$STATE/cp1.toml" --threads 2 >"$out/cp.log" 2>&1 &
    local cp=$!
    PIDS=("$mp" "$gw" "$cp")
    local ready=0
    for _ in $(seq 1200); do # up to 120 s: start-up under callgrind is slow
        if curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/ready" 2>/dev/null; then
            ready=1
            break
        fi
        sleep 0.1
    done
    ((ready)) || { cat "$out"/*.log >&2; echo "roles not ready" >&2; exit 1; }
    oha --no-tui -n "$n" -c 8 --http-version 1.1 "${TLS[@]}" "$URL" >"$out/oha.txt"
    grep -q "\[200\] $n responses" "$out/oha.txt" || { cat "$out/oha.txt" >&2; echo "not every answer was 200" >&2; exit 1; }
    kill -TERM "$gw" "$cp" "$mp"
    wait "$gw" "$cp" "$mp" 2>/dev/null || true
    PIDS=()
    local role total
    for role in gw cp; do
        total=$(grep -h '^summary:' "$out/$role".* | awk '{s += $2} END {print s}')
        printf '%s ' "$total"
    done
    echo
    rm -rf "$out"
}

printf '%-40s %12s %12s %12s\n' binary gateway connector both
for bin in "$@"; do
    read -r g1 c1 < <(count "$bin" "$N1")
    read -r g2 c2 < <(count "$bin" "$N2")
    n=$((N2 - N1))
    printf '%-40s %12d %12d %12d   instructions per request\n' "$bin" \
        $(((g2 - g1) / n)) $(((c2 - c1) / n)) $(((g2 - g1 + c2 - c1) / n))
done
