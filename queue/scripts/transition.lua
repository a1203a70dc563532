-- Moves a campaign from one of the allowed states to a target state atomically
-- (queue::transition_script: pause, resume and cancel; the contract is in queue/schema.hpp).
--
-- KEYS: 1 campaign (hash).
-- ARGV: 1 target state, 2 now (RFC 3339, written as <target>_at), then the states it may
--       move from.
-- Returns the state it found (moved only if that is one of ARGV[3..]), or nil when the
-- campaign does not exist.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
for i = 3, #ARGV do
  if state == ARGV[i] then
    redis.call('HSET', KEYS[1], 'state', ARGV[1], ARGV[1] .. '_at', ARGV[2])
    return state
  end
end
return state
