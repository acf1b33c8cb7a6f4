-- status.lua: counts the HTTP status of every response and prints exact latency percentiles.
-- run.py appends it to each endpoint's script (alone for the GET endpoints). At the end it
-- prints lines the harness parses:
--   status <code> <count>        one per status seen, all threads added up
--   latency_us <p50> <p99>       wrk's own percentiles, in microseconds
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d %d\n", status, count))
  end
  io.write(string.format("latency_us %d %d\n", latency:percentile(50), latency:percentile(99)))
end
