-- wrk script for scripts/bench/bench.py: every request is one owner's ballot for the
-- meeting's three matters (one transaction of three submissions on the server).
--
--   wrk -t T -c C -d D -s votes.lua URL -- TOKENS_FILE THREADS OUT_PREFIX
--
-- TOKENS_FILE has one "index<TAB>token" line per voter; thread i uses lines with
-- index % THREADS == i, each exactly once.  Every 201 response's ballot ids are
-- written to OUT_PREFIX.<thread>.acked (one per line, then "#<TAB>time" for the
-- request), every other status goes to OUT_PREFIX.<thread>.status with the start time
-- and, when the thread has used all its tokens, "done" (bench.py then stops wrk with
-- SIGINT, since wrk itself always sleeps the whole -d).

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()   -- CLOCK_MONOTONIC seconds: wrk always sleeps the whole -d, so time the votes here
   ffi.C.clock_gettime(1, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local counter = 0
local threads = {}

function setup(thread)
   thread:set("tid", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

local tokens = {}
local bodies = {}
local next_index = 1
local acked_file
local CHOICES = {"yes", "yes", "yes", "no", "abstain"}

function init(args)
   local path, nthreads, prefix = args[1], tonumber(args[2]), args[3]
   for line in io.lines(path) do
      local index, token = line:match("^(%d+)\t(.+)$")
      index = tonumber(index)
      if index % nthreads == tid then
         table.insert(tokens, token)
         local c1 = CHOICES[index % 5 + 1]
         local c2 = CHOICES[(index + 2) % 5 + 1]
         local c3 = CHOICES[(index + 4) % 5 + 1]
         bodies[#tokens] = string.format(
            '{"idempotency_key":"b%d","votes":[{"matter_id":"M1","choice":"%s"},' ..
            '{"matter_id":"M2","choice":"%s"},{"matter_id":"M3","choice":"%s"}]}',
            index, c1, c2, c3)
      end
   end
   acked_file = io.open(prefix .. "." .. tid .. ".acked", "w")
   status_file = io.open(prefix .. "." .. tid .. ".status", "w")
end

function request()
   local i = next_index
   if i > #tokens then
      -- Out of voters: stop this thread.  The event loop may still send this one
      -- harmless request (a health check, answered 200 and not counted as a vote).
      if i == #tokens + 1 then
         status_file:write("done\n")
         status_file:flush()
      end
      wrk.thread:stop()
      next_index = next_index + 1
      return wrk.format("GET", "/healthz")
   end
   if i == 1 then
      status_file:write("start\t", string.format("%.6f", now()), "\n")
      status_file:flush()
   end
   next_index = next_index + 1
   return wrk.format("POST", "/api/ballot/votes",
                     {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i]},
                     bodies[i])
end

function response(status, headers, body)
   if status == 201 then
      for ballot in body:gmatch('"ballot_id":%s*"([0-9a-f%-]+)"') do
         acked_file:write(ballot, "\n")
      end
      acked_file:write("#\t", string.format("%.6f", now()), "\n")   -- one line per acknowledged request
   elseif status ~= 200 then
      status_file:write(status, "\t", body:sub(1, 200), "\n")
      status_file:flush()
   end
end

function done(summary, latency, requests)
   io.write(string.format("BENCH-JSON {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d," ..
                          "\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,\"timeouts\":%d," ..
                          "\"status_errors\":%d}\n",
                          summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
                          summary.errors.connect, summary.errors.read, summary.errors.write,
                          summary.errors.timeout, summary.errors.status))
end
