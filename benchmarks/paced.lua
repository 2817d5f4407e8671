-- wrk script for benchmarks/api.py: requests at a fixed rate, bearer token, JSON summary.
--
-- Arguments (after `--`): TOKEN RATE. Every delay() call books the next slot of one schedule
-- (RATE per second for the thread), so the connections together send at RATE as long as one is
-- free; when the server falls behind, the achieved rate drops and the report shows it.
local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } aeth_timespec;
int clock_gettime(int clock_id, aeth_timespec *tp);
]])
local clock = ffi.new("aeth_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local interval, next_at

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  interval = 1000 / tonumber(args[2])
end

function delay()
  local now = now_ms()
  next_at = (next_at or now) + interval
  local wait = next_at - now
  if wait < 0 then
    return 0
  end
  return wait
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, "socket_errors": %d, "status_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
