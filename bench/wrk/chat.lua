-- wrk script of the Tollgate side-by-side benchmark (bench/README.md).
--
-- One POST, built once per thread from the environment so every target gets
-- exactly the same bytes:
--   BENCH_BODY     the JSON body
--   BENCH_HEADERS  extra headers, one "Name: value" per line
-- done() prints one line "BENCH_JSON {...}" with the request count, the
-- errors and the latency distribution (microseconds), which benchrun parses.

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"model":"mock-gpt","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if name then
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
