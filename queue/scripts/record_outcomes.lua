-- Records a batch of outcomes of one campaign atomically and idempotently
-- (queue::record_outcomes_script; the contract is in queue/schema.hpp).
--
-- KEYS: 1 recipients (stream), 2 counts (hash), 3 outcomes (stream), 4 campaign (hash),
--       5 inflight (hash), 6 retry (sorted set), 7 dead (stream); one campaign, one hash tag.
-- ARGV: 1 consumer group, 2 now (RFC 3339), then 9 per record: entry id, state (sent, failed,
--       skipped, ambiguous, retry or release), member id, reason, flags ('r': resent), attempts,
--       reply, retry delay in ms, paused, deferred (ms since the epoch of the first transient
--       answer, 0: none).
-- Returns {recorded, done, counted}: done = 1 if this call completed the campaign; counted has
-- one number per record: 0 not counted (already recorded, or a release), 1 counted as given,
-- 2 a retry recorded `failed` instead because its entry is no longer in the stream.
--
-- An entry counts only if XACK removed it from the pending list, so replaying a batch after a
-- lost reply never counts anything twice.
local group = ARGV[1]
local now = ARGV[2]
local recorded = 0
local add = {}       -- counts field -> increment
local released = {}  -- entry ids whose in-flight mark goes
local counted = {}
local channel = nil
local clock = nil

-- The entry's fields as a flat array, or nil when it is no longer in the stream.
local function entry_fields(id)
  local e = redis.call('XRANGE', KEYS[1], id, id)
  if #e == 0 then return nil end
  return e[1][2]
end

local function field(f, name)
  if not f then return nil end
  for j = 1, #f, 2 do
    if f[j] == name then return f[j + 1] end
  end
  return nil
end

-- Redis's clock in ms, read once per call: retries are due on the server's time, not a shard's.
local function now_ms()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end

for i = 3, #ARGV, 10 do
  local id, state, member, reason, flags = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local attempts, reply = ARGV[i + 5], ARGV[i + 6]
  local c = 0
  -- A release only clears the in-flight mark: the entry stays pending (handed back, not sent).
  if state ~= 'release' and redis.call('XACK', KEYS[1], group, id) == 1 then
    c = 1
    local f = nil
    if state == 'retry' then
      f = entry_fields(id)
      if f then
        -- The retry carries the entry's own fields; attempt, paused, deferred and origin are
        -- rewritten.
        local out = {}
        local origin = id
        for j = 1, #f, 2 do
          local name = f[j]
          if name == 'origin' then
            origin = f[j + 1]
          elseif name ~= 'attempt' and name ~= 'paused' and name ~= 'deferred' then
            out[#out + 1] = name
            out[#out + 1] = f[j + 1]
          end
        end
        out[#out + 1] = 'attempt'
        out[#out + 1] = attempts
        out[#out + 1] = 'paused'
        out[#out + 1] = ARGV[i + 8]
        if ARGV[i + 9] ~= '0' and ARGV[i + 9] ~= '' then
          out[#out + 1] = 'deferred'
          out[#out + 1] = ARGV[i + 9]
        end
        out[#out + 1] = 'origin'
        out[#out + 1] = origin
        local due = string.format('%.0f', now_ms() + tonumber(ARGV[i + 7]))
        redis.call('ZADD', KEYS[6], due,
                   cjson.encode({entry = id, fields = out, attempt = tonumber(attempts), reply = reply}))
        add['retrying'] = (add['retrying'] or 0) + 1
      else
        -- Deleted from the stream meanwhile: nothing left to retry with.
        state = 'failed'
        reason = 'cannot retry: the entry is no longer in the stream; last reply: ' .. reply
        c = 2
      end
    end
    if flags == 'r' then add['resent'] = (add['resent'] or 0) + 1 end
    if state ~= 'retry' then
      add[state] = (add[state] or 0) + 1
      if state ~= 'sent' then
        redis.call('XADD', KEYS[3], '*', 'entry', id, 'member', member, 'state', state,
                   'reason', reason, 'at', now)
      end
      if state == 'failed' then
        -- A dead letter holds what a requeue needs to add the recipient back.
        f = f or entry_fields(id)
        channel = channel or redis.call('HGET', KEYS[4], 'channel') or ''
        redis.call('XADD', KEYS[7], '*', 'entry', id, 'origin', field(f, 'origin') or id, 'member', member,
                   'to', field(f, 'to') or '', 'data', field(f, 'data') or '', 'channel', channel,
                   'attempts', attempts, 'reason', reason, 'reply', reply, 'at', now)
      end
    end
    recorded = recorded + 1
  end
  released[#released + 1] = id
  counted[#counted + 1] = c
end

if #released > 0 then redis.call('HDEL', KEYS[5], unpack(released)) end
for state, n in pairs(add) do
  redis.call('HINCRBY', KEYS[2], state, n)
end

-- Done once a sealed campaign (total set) has a final state for every recipient.
local done = 0
local meta = redis.call('HMGET', KEYS[4], 'total', 'state')
if meta[1] and meta[2] ~= 'done' then
  local c = redis.call('HMGET', KEYS[2], 'sent', 'failed', 'skipped', 'ambiguous')
  local sum = 0
  for _, v in ipairs(c) do sum = sum + (tonumber(v) or 0) end
  if sum >= tonumber(meta[1]) then
    redis.call('HSET', KEYS[4], 'state', 'done', 'finished_at', now)
    done = 1
  end
end
return {recorded, done, counted}
