-- Moves due retries back into the recipients stream (queue::move_due_retries_script; the
-- contract is in queue/schema.hpp).
--
-- KEYS: 1 retry (sorted set, score = due time in ms), 2 recipients (stream), 3 counts (hash).
-- ARGV: 1 the most retries to move in this call (bounds the script's run time).
-- Returns {moved, still waiting, malformed}.
--
-- Each due member becomes a new entry with the original fields plus attempt, paused and origin
-- (written by record_outcomes.lua). One atomic call: shards moving at once never move one twice.
--
-- A member that is not what record_outcomes.lua writes (a buggy or hostile writer) must not stop
-- the others: it becomes an entry carrying `malformed` (the reason) and whatever of to, id, data
-- and origin it still holds as strings, which the engine records `failed` like any other failure.
local max_elements = 256  -- 128 field/value pairs: far more than an entry has, well below unpack's limit

local function problem_of(m)
  local ok, p = pcall(cjson.decode, m)
  if not ok or type(p) ~= 'table' then return 'not JSON', nil end
  local f = p.fields
  if type(f) ~= 'table' or #f < 2 then return "no list of field names and values", p end
  if #f > max_elements then return 'more than ' .. max_elements .. ' field names and values', p end
  if #f % 2 ~= 0 then return 'an odd number of field names and values', p end
  for i = 1, #f do
    if type(f[i]) ~= 'string' then return 'a field name or value that is not a string', p end
  end
  return nil, p
end

-- What of a malformed member is still usable, for the record and a dead letter.
local function salvage(p, reason)
  local out = {}
  local f = type(p) == 'table' and p.fields or nil
  local origin = type(p) == 'table' and type(p.entry) == 'string' and p.entry or nil
  if type(f) == 'table' then
    for i = 1, math.min(#f, max_elements) - 1, 2 do
      local name, value = f[i], f[i + 1]
      if type(name) == 'string' and type(value) == 'string' then
        if name == 'to' or name == 'id' or name == 'data' then
          out[#out + 1] = name
          out[#out + 1] = value
        elseif name == 'origin' then
          origin = value
        end
      end
    end
  end
  if origin then
    out[#out + 1] = 'origin'
    out[#out + 1] = origin
  end
  out[#out + 1] = 'malformed'
  out[#out + 1] = 'unusable retry: ' .. reason
  return out
end

local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved, malformed = 0, 0
for _, m in ipairs(due) do
  local reason, p = problem_of(m)
  if reason then
    redis.call('XADD', KEYS[2], '*', unpack(salvage(p, reason)))
    malformed = malformed + 1
  else
    redis.call('XADD', KEYS[2], '*', unpack(p.fields))
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], m)
end
if moved + malformed > 0 then
  redis.call('HINCRBY', KEYS[3], 'retrying', -(moved + malformed))
end
if moved > 0 then
  redis.call('HINCRBY', KEYS[3], 'retried', moved)
end
return {moved, redis.call('ZCARD', KEYS[1]), malformed}
