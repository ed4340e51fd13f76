-- wrk script: send pre-signed, distinct webhook requests read from $HOOKWISE_BENCH_REQUESTS.
-- Each line: webhook-id <TAB> webhook-timestamp <TAB> webhook-signature <TAB> body
-- Every thread takes its own stripe of lines, so no request is ever sent twice.
local requests = {}
local index = 0
wrapped = 0
local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  thread:set("stride", 0)
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("HOOKWISE_BENCH_REQUESTS")
  local stride = tonumber(os.getenv("HOOKWISE_BENCH_THREADS") or "1")
  local n = 0
  for line in io.lines(path) do
    if n % stride == id then
      local msg_id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      table.insert(requests, wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = msg_id,
        ["webhook-timestamp"] = ts,
        ["webhook-signature"] = sig,
      }, body))
    end
    n = n + 1
  end
end

function request()
  index = index + 1
  if index > #requests then
    index = 1
    wrapped = wrapped + 1
  end
  return requests[index]
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local w = t:get("wrapped")
    if w and w > 0 then
      io.write(string.format("WARNING: thread reused requests (%d wraps)\n", w))
    end
  end
end
