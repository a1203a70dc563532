-- Records a consent withdrawal unless one is recorded already (queue::withdraw_consent_script;
-- the contract is in queue/consent.hpp).
--
-- KEYS: 1 the member's consent hash.
-- ARGV: 1 field (<channel>:<category> or <channel>:*), 2 value (withdrawn|<time>|<source>).
-- Returns 1 when it wrote the withdrawal, 0 when the field was withdrawn before.
--
-- Applying the same unsubscribe twice keeps the first withdrawal's time and source.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.sub(current, 1, 10) == 'withdrawn|' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
