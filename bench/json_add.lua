-- json_add.lua: POST /queue with the JSON protocol's add command.
-- Body: {"cmd":"add","queue":"<RESTMQ_BENCH_QUEUE>","value":"xxx..."} with a value of
-- RESTMQ_BENCH_VALUE_SIZE bytes (default 100) for the queue RESTMQ_BENCH_QUEUE (default bench).
local size = tonumber(os.getenv("RESTMQ_BENCH_VALUE_SIZE") or "100")
local queue = os.getenv("RESTMQ_BENCH_QUEUE") or "bench"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"cmd":"add","queue":"%s","value":"%s"}', queue, string.rep("x", size))
