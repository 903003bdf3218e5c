-- wrk script of the Tollgate side-by-side benchmark (bench/README.md).
--
-- One POST, built once per thread from the environment so every target gets
-- exactly the same bytes:
--   BENCH_BODY     the JSON body
--   BENCH_HEADERS  extra headers, one "Name: value" per line
--   BENCH_HIST=1   also print the latency histogram (floor-c1 merges it)
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

-- hist renders wrk's latency histogram as [[us,count],...], ascending.
-- latency(i) is the i-th bucket that is not empty, as (us, count), for
-- i = 1 .. #latency (wrk 4.x, stats_value_at); past #latency it returns
-- (0, #latency), so the loop stops there. Each call walks the histogram
-- from its minimum, hence opt-in: only floor-c1 asks. The counts include
-- wrk's coordinated-omission correction, which benchrun takes out again
-- (wrk.go, requestHist).
local function hist(latency)
  local parts = {}
  for i = 1, #latency do
    local us, count = latency(i)
    if count > 0 then
      parts[#parts + 1] = string.format("[%d,%d]", us, count)
    end
  end
  return ',"hist":[' .. table.concat(parts, ",") .. ']'
end

function done(summary, latency, requests)
  local e = summary.errors
  local h = ""
  if os.getenv("BENCH_HIST") == "1" then
    h = hist(latency)
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), h))
end
