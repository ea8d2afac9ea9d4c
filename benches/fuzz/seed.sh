#!/usr/bin/env bash
# Seeds each fuzz target's corpus with the inputs the tests already know: sample and broken
# protocols, real and broken archives, recorded SSE transcripts, an Ollama NDJSON stream.
# Run from the repository root: benches/fuzz/seed.sh
set -euo pipefail
c=benches/fuzz/corpus
mkdir -p $c/protocol $c/archive $c/sse $c/ndjson
cp sample-protocols/*.toml tests/fixtures/bad-protocols/*.toml $c/protocol/
cp tests/fixtures/bad-archives/*.jsonl $c/archive/
cp tests/fixtures/bad-archives/base.jsonl.src $c/archive/base.jsonl
# The SSE target's first byte is the split point.
for f in tests/golden/serve/*.sse; do [ -e "$f" ] && { printf '\x40'; cat "$f"; } > "$c/sse/$(basename "$f")"; done
printf '\x10data: {"type":"message_start","message":{"id":"m","model":"c","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Paris."}}\n\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}\n\ndata: {"type":"message_stop"}\n\n' > $c/sse/anthropic
printf '\x08data: {"candidates":[{"content":{"parts":[{"text":"Paris."}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2},"modelVersion":"g"}\r\n\r\n' > $c/sse/gemini
printf '{"model":"llama3.2","message":{"role":"assistant","content":"Par"},"done":false}\n{"model":"llama3.2","message":{"role":"assistant","content":"is."},"done":false}\n{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":9,"eval_count":2}\n' > $c/ndjson/ollama
ls $c/* | head -3
