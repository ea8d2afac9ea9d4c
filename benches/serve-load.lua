-- wrk load for `reprise serve`: one chat completion per request, 64 tokens, temperature 0.
--   reprise serve --addr 127.0.0.1:8080 &
--   wrk -t1 -c16 -d10s -s benches/serve-load.lua http://127.0.0.1:8080/v1/chat/completions
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"reprise-local-1","messages":[{"role":"user","content":"Explain in one paragraph why floating-point addition is not associative."}],"temperature":0,"max_tokens":64}'

done = function(summary, latency, requests)
  io.write(string.format("%d requests, %d errors (status), %.0f requests/s\n",
    summary.requests, summary.errors.status, summary.requests / (summary.duration / 1e6)))
end
