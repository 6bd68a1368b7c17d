#!/usr/bin/env bash
# Runs every fuzz target in turn for SECONDS seconds each (default 25: the CI smoke
# run) and fails on the first crash, hang, leak or memory blow-up. Needs nightly and
# cargo-fuzz (README.md here). New inputs go to a scratch corpus under WORK (default
# target/fuzz-work), never into the committed seeds in corpus/<target>/.
#
#   fuzz/run.sh              # smoke: 25 s per target
#   SECONDS_PER_TARGET=3600 nice -n 19 fuzz/run.sh   # the campaign
#   fuzz/run.sh proxy_header h1_guard                 # some targets only
#   SANITIZER=none fuzz/run.sh                        # CI: no AddressSanitizer (Rust's own
#                                                     # checks still catch panics and
#                                                     # overflows; the build is much faster)
set -euo pipefail
cd "$(dirname "$0")"
per_target="${SECONDS_PER_TARGET:-25}"
sanitizer="${SANITIZER:-address}"
work="${WORK:-target/fuzz-work}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -O -s "$sanitizer"
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  echo "== $t (${per_target}s)"
  # -timeout: an input taking over 10 s is a hang; -rss_limit_mb: memory is bounded.
  status=0
  cargo +nightly fuzz run -O -s "$sanitizer" "$t" "$work/$t" "corpus/$t" -- \
    -max_total_time="$per_target" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/$t-" >"$work/$t.log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY)' "$work/$t.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$work/$t.log" >&2
    echo "fuzz target $t failed (exit $status): see $work/$t.log and the artifact in $work/" >&2
    exit 1
  fi
done
