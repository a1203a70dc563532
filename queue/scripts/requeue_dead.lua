-- Requeues dead letters into the recipients stream as fresh entries (queue::requeue_dead_script;
-- the contract is in queue/schema.hpp).
--
-- KEYS: 1 dead (stream), 2 recipients (stream), 3 counts (hash), 4 campaign (hash).
-- ARGV: the dead letters' stream ids.
-- Returns {requeued, campaign state}; an error reply for a campaign that does not exist or is
-- cancelled.
--
-- A dead letter already gone is skipped, so a repeated call requeues nothing twice. Attempts
-- start over (no `attempt` field); `origin` ties the new entry to the portal's.
local state = redis.call('HGET', KEYS[4], 'state')
if not state then return redis.error_reply('campaign does not exist') end
if state == 'cancelled' then return redis.error_reply('campaign is cancelled') end
local n = 0
for i = 1, #ARGV do
  local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #e == 1 then
    local f = e[1][2]
    local out = {}
    for j = 1, #f, 2 do
      local name, value = f[j], f[j + 1]
      if name == 'to' or name == 'origin' or (name == 'data' and value ~= '') then
        out[#out + 1] = name
        out[#out + 1] = value
      elseif name == 'member' and value ~= '' then
        out[#out + 1] = 'id'  -- the recipient entry calls the member id `id`
        out[#out + 1] = value
      end
    end
    if #out == 0 then out = {'to', ''} end
    redis.call('XADD', KEYS[2], '*', unpack(out))
    redis.call('XDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], 'failed', -n)
  redis.call('HINCRBY', KEYS[3], 'requeued', n)
  -- Recipients are pending again: a finished campaign must be served again.
  if state == 'done' then
    redis.call('HSET', KEYS[4], 'state', 'active')
    redis.call('HDEL', KEYS[4], 'finished_at')
    state = 'active'
  end
end
return {n, state}
