-- Appends a batch of events to the capped events stream in one call, one reply for the batch
-- (queue::append_events_script; the contract is in queue/schema.hpp).
--
-- KEYS: 1 events (stream).
-- ARGV: 1 max length (XADD MAXLEN ~), 2 at (RFC 3339), then 8 per event: campaign, entry,
--       member, channel, state, reason, reply, attempt.
-- Returns the number of events added.
local maxlen, at = ARGV[1], ARGV[2]
for i = 3, #ARGV, 8 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'campaign', ARGV[i], 'entry', ARGV[i + 1],
             'member', ARGV[i + 2], 'channel', ARGV[i + 3], 'state', ARGV[i + 4], 'reason', ARGV[i + 5],
             'reply', ARGV[i + 6], 'attempt', ARGV[i + 7], 'at', at)
end
return (#ARGV - 2) / 8
