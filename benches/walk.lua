-- wrk script: request every path listed in the file given as the first
-- script argument (one path per line), each once, then stop; the second
-- argument is wrk's thread count (-t), each thread taking every n-th line.
-- While a thread's last answers come in, its other connections ask for
-- /healthz (not counted). A thread that has all its answers appends a line to the
-- file named by the third argument and stops; wrk itself sleeps out its -d
-- unless interrupted (SIGINT), so the caller waits for as many lines as
-- threads, then interrupts it. Further arguments are request headers,
-- "Name: value". done() prints how many answers came with which status.
--
-- benches/rss.sh uses it to warm a view cache of 10^6 merchants faster than
-- curl can (the views must all still be cached when memory is read).
local threads = {}

setup = function(thread)
  -- wrk calls setup and then init for one thread before the next.
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local reqs, n, sent, answered, statuses
-- Asked once every path is sent, while the last answers come in; its
-- answer (exactly this body) is not counted.
local FILLER, FILLER_BODY = "/healthz", '{"status":"ok"}'

init = function(args)
  headers_ = {}
  local nthreads = tonumber(args[2])
  done_file = args[3]
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    headers_[name] = value
  end
  reqs, n, sent, answered, statuses = {}, 0, 0, 0, {}
  local k = 0
  for line in io.lines(args[1]) do
    if k % nthreads == id then
      n = n + 1
      reqs[n] = line
    end
    k = k + 1
  end
  -- wrk asks thread 0's request() once more, right after this, only to
  -- check what it returns (script_verify_request): that one is not sent.
  verifying = id == 0
  if n == 0 then
    local f = io.open(done_file, "a")
    f:write("thread " .. id .. " done (no paths)\n")
    f:close()
  end
end

request = function()
  if verifying then
    verifying = false
    return wrk.format("GET", FILLER)
  end
  sent = sent + 1
  if sent > n then
    return wrk.format("GET", FILLER)
  end
  return wrk.format("GET", reqs[sent], headers_)
end

response = function(status, headers, body)
  if status == 200 and body == FILLER_BODY then
    return
  end
  answered = answered + 1
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  statuses_text = ""
  for s, c in pairs(statuses) do
    statuses_text = statuses_text .. c .. "×" .. s .. " "
  end
  if answered == n then
    local f = io.open(done_file, "a")
    f:write("thread " .. id .. " done\n")
    f:close()
    wrk.thread:stop()
  end
end

done = function(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write("walk thread " .. t:get("id") .. ": " .. (t:get("statuses_text") or "") .. "\n")
  end
end
