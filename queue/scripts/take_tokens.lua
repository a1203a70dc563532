-- Takes up to n tokens from several token buckets at once, atomically: a GCRA (generic cell
-- rate algorithm) over one key per bucket (queue::take_tokens_script; the contract is in
-- queue/rate_limit.hpp).
--
-- KEYS: the buckets, each holding its theoretical arrival time (TAT) in microseconds since the
--       epoch.
-- ARGV: 1 tokens wanted (>= 1), 2 now in microseconds since the epoch, or '' for Redis's own
--       clock (TIME), then per bucket its interval and tolerance in microseconds.
-- Returns {granted, wait_us, limiting}: when granted < wanted, wait_us is how long until every
-- bucket has a token again and limiting the 1-based index of the bucket that waits longest
-- (0 when everything asked was granted).
--
-- Per bucket, with TAT t (at least now): the k-th token (k = 1, 2, ...) starts at
-- t + (k - 1) * interval and may be taken while that is no later than now + tolerance. The call
-- grants the smallest such count over the buckets, then moves each TAT on by granted * interval.
-- TATs are stored rounded to whole microseconds ('%.0f': Lua's tostring keeps 14 digits only);
-- a key expires once its TAT has passed, when the bucket is full anyway.

-- TIME before a write needs effects replication: the default from Redis 5 on, asked for on older ones.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local wanted = tonumber(ARGV[1])
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[2])
end
local n = #KEYS
local tat, interval, tolerance = {}, {}, {}
local granted = wanted
for i = 1, n do
  interval[i] = tonumber(ARGV[1 + 2 * i])
  tolerance[i] = tonumber(ARGV[2 + 2 * i])
  local t = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if t < now then t = now end
  tat[i] = t
  local k = math.floor((now + tolerance[i] - t) / interval[i]) + 1
  if k < 0 then k = 0 end
  if k < granted then granted = k end
end
local wait, limiting = 0, 0
for i = 1, n do
  local t = tat[i] + granted * interval[i]
  if granted > 0 then
    redis.call('SET', KEYS[i], string.format('%.0f', t), 'PX', math.floor((t - now) / 1000) + 1000)
  end
  if granted < wanted then
    local ready = t - tolerance[i] - now
    if ready > wait then
      wait = ready
      limiting = i
    end
  end
end
return {granted, math.ceil(wait), limiting}
