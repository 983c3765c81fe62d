-- wrk script for bench/run's strangler-paced target: each connection pauses between requests
-- for STRANGLER_BENCH_PAUSE_MS milliseconds on average. wrk's delay() takes whole milliseconds,
-- so a fractional mean is drawn per request from the two whole numbers around it.
local pause = tonumber(os.getenv("STRANGLER_BENCH_PAUSE_MS") or "0") or 0
local whole = math.floor(pause)
local fraction = pause - whole

function delay()
  if math.random() < fraction then
    return whole + 1
  end
  return whole
end
