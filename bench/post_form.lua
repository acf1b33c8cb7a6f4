-- post_form.lua: POST /q/<queue> (queue in the URL) with the form body value=<value>.
-- The value is RESTMQ_BENCH_VALUE_SIZE bytes of "x" (default 100).
local size = tonumber(os.getenv("RESTMQ_BENCH_VALUE_SIZE") or "100")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "value=" .. string.rep("x", size)
