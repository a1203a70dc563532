-- Moves due retries back into the recipients stream (queue::move_due_retries_script; the
-- contract is in queue/schema.hpp).
--
-- KEYS: 1 retry (sorted set, score = due time in ms), 2 recipients (stream), 3 counts (hash).
-- ARGV: 1 the most retries to move in this call (bounds the script's run time).
-- Returns {moved, still waiting}.
--
-- Each due member becomes a new entry with the original fields plus attempt, paused and origin
-- (written by record_outcomes.lua). One atomic call: shards moving at once never move one twice.
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, m in ipairs(due) do
  -- A member that is not what record_outcomes.lua writes is dropped, not moved.
  local ok, p = pcall(cjson.decode, m)
  if ok and type(p) == 'table' and type(p.fields) == 'table' and #p.fields >= 2 then
    redis.call('XADD', KEYS[2], '*', unpack(p.fields))
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], m)
end
if moved > 0 then
  redis.call('HINCRBY', KEYS[3], 'retrying', -moved)
  redis.call('HINCRBY', KEYS[3], 'retried', moved)
end
return {moved, redis.call('ZCARD', KEYS[1])}
