-- POST one fixed JSON body and check every answer (used by bench/gateway_overhead.py).
--
-- Environment (read once per wrk thread):
--   WRK_BODY_FILE  file holding the request body (JSON)
--   WRK_AUTH       value of the Authorization header ("Bearer ...")
--   WRK_EXPECT     a string every good response body must contain (e.g. "[DONE]")
--
-- wrk itself counts status >= 400 ("Non-2xx or 3xx responses") and socket errors. A streamed
-- answer can start with 200 and still fail mid-way, so each body is also checked for
-- WRK_EXPECT; done() prints "bench_checked N bench_bad M" for the harness to parse.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
  local auth = os.getenv("WRK_AUTH")
  if auth and auth ~= "" then
    wrk.headers["Authorization"] = auth
  end
  expect = os.getenv("WRK_EXPECT") or ""
  checked = 0
  bad = 0
end

function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or (expect ~= "" and not string.find(body, expect, 1, true)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local c, b = 0, 0
  for _, thread in ipairs(threads) do
    c = c + (thread:get("checked") or 0)
    b = b + (thread:get("bad") or 0)
  end
  io.write(string.format("bench_checked %d bench_bad %d\n", c, b))
end
