#!/usr/bin/env bash
# The full fault campaign (issue 7): 1,000 calls through `reprise serve` failing 10% of
# requests, 2% of each kind (429 with Retry-After 1 s, 500, a 5 s stall, a cut reply, a
# malformed reply). Prints: planned outcomes recorded, outcomes doubled, attempts by class,
# the shortest wait after a 429 (must be >= 1000 ms), and the verify line.
#
#   cargo build --release && benches/fault-campaign.sh [CALLS] [CONCURRENCY]
#
# Needs jq. Uses a private config and data directory; the server listens on loopback only.
set -euo pipefail
calls=${1:-1000}
concurrency=${2:-32}
bin=${REPRISE_BIN:-target/release/reprise}
work=$(mktemp -d)
trap 'kill $serve 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" serve --addr 127.0.0.1:0 --seed 7 --retry-after 1 --stall-secs 5 \
  --faults 429=0.02,500=0.02,stall=0.02,cut=0.02,malformed=0.02 >"$work/serve.log" 2>&1 &
serve=$!
for _ in $(seq 100); do grep -q 'http://' "$work/serve.log" && break; sleep 0.05; done
url=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)

mkdir -p "$work/config"
cat >"$work/config/config.toml" <<TOML
[providers.serve]
kind = "openai"
base_url = "$url/v1"
model = "reprise-local-1"
first_byte_timeout_ms = 1000
max_retries = 4
TOML
cat >"$work/faults.toml" <<TOML
[protocol]
name = "fault-campaign"
[prompt]
user = "Tell me about Richard Feynman."
[params]
temperature = 0.0
max_tokens = 40
[[targets]]
provider = "serve"
TOML

start=$(date +%s.%N)
REPRISE_CONFIG_DIR="$work/config" REPRISE_DATA_DIR="$work/data" \
  "$bin" run "$work/faults.toml" --repeats "$calls" --concurrency "$concurrency" \
  --out "$work/archive.jsonl" --json >"$work/summary.json"
end=$(date +%s.%N)

jq -s --argjson planned "$calls" '
  [.[] | select(.kind == "call")] as $c
  | ($c | map(select(.retried != true)) | group_by(.call)) as $outcomes
  | {
      planned: $planned,
      outcomes_recorded: ($outcomes | length),
      outcomes_doubled: ($outcomes | map(select(length > 1)) | length),
      attempts: ($c | length),
      ok: ($c | map(select(.status == "ok")) | length),
      retried_by_class: ($c | map(select(.retried == true)) | group_by(.error.class)
                          | map({(.[0].error.class): length}) | add),
      final_errors_by_class: ($c | map(select(.status == "error" and .retried != true))
                          | group_by(.error.class) | map({(.[0].error.class): length}) | add),
      shortest_wait_after_429_ms: ([ $c[] | select(.retried == true and .error.class == "rate_limit") as $r
          | $c[] | select(.call == $r.call and .attempt == $r.attempt + 1)
          | .timing.start_ms - ($r.timing.start_ms + $r.timing.latency_ms) ] | min)
    }' "$work/archive.jsonl"
echo "wall time: $(echo "$end - $start" | bc) s"
"$bin" verify "$work/archive.jsonl"
