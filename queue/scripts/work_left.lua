-- What is left of one campaign, read at one instant (queue::work_left_script; the contract is in
-- queue/consumer.hpp). An entry moves from the stream to a consumer's pending list, from there
-- (a deferral) into the retry set, and from there back into the stream as a new entry: three
-- separate reads can each miss an entry that moved between them, and `run --until-idle` would
-- stop with work left. Read here, in one script, nothing moves in between.
--
-- KEYS: 1 the recipients stream, 2 the retry set. ARGV: 1 the consumer group.
-- Returns {pending, retries, unread}: entries read and not recorded, retries waiting, and 1 when
-- the stream holds an entry after the group's last delivered id (else 0). A stream or group
-- deleted by hand counts as nothing left of it.
local pending, unread = 0, 0
local summary = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(summary) == 'table' and not summary.err then pending = tonumber(summary[1]) or 0 end
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) == 'table' and not groups.err then
  for _, group in ipairs(groups) do
    local name, last
    for i = 1, #group - 1, 2 do
      if group[i] == 'name' then name = group[i + 1] end
      if group[i] == 'last-delivered-id' then last = group[i + 1] end
    end
    if name == ARGV[1] and last then
      if #redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1) > 0 then unread = 1 end
    end
  end
end
return {pending, redis.call('ZCARD', KEYS[2]), unread}
