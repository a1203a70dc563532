#include "queue/schema.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace budstikke::queue {

std::optional<channel> parse_channel(std::string_view s) {
  if (s == "email") return channel::email;
  if (s == "sms") return channel::sms;
  return std::nullopt;
}

std::string_view to_string(channel c) { return c == channel::email ? "email" : "sms"; }

std::string_view to_string(final_state s) {
  switch (s) {
    case final_state::sent: return "sent";
    case final_state::failed: return "failed";
    case final_state::skipped: return "skipped";
    case final_state::ambiguous: return "ambiguous";
  }
  return "unknown";
}

bool valid_campaign_id(std::string_view id) {
  return !id.empty() && id.size() <= max_id_length &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

std::vector<std::pair<std::string, std::string>> campaign_definition::to_fields() const {
  std::vector<std::pair<std::string, std::string>> f{
      {"id", id},
      {"channel", std::string(to_string(kind))},
      {"category", category},
      {"tenant", tenant},
      {"priority", std::to_string(priority)},
      {"from", from_address},
      {"from_name", from_name},
      {"state", state},
      {"created_at", created_at},
  };
  if (total) f.emplace_back("total", std::to_string(*total));
  if (sms_max_segments) f.emplace_back("sms_max_segments", std::to_string(*sms_max_segments));
  for (const auto& [name, source] : templates)
    f.emplace_back(std::string(template_field_prefix) + name, source);
  for (const auto& [name, source] : partials)
    f.emplace_back(std::string(partial_field_prefix) + name, source);
  return f;
}

std::optional<campaign_definition> campaign_definition::from_fields(
    std::string_view id, const std::vector<std::pair<std::string_view, std::string_view>>& fields,
    std::string& error) {
  campaign_definition c;
  c.id = std::string(id);
  bool have_channel = false;
  for (const auto& [name, value] : fields) {
    if (name == "channel") {
      auto ch = parse_channel(value);
      if (!ch) {
        error = fmt::format("campaign {}: field 'channel' is '{}', expected email or sms", id, value);
        return std::nullopt;
      }
      c.kind = *ch;
      have_channel = true;
    } else if (name == "category") {
      c.category = std::string(value);
    } else if (name == "tenant") {
      c.tenant = std::string(value);
    } else if (name == "priority") {
      int p = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), p);
      if (ec != std::errc() || ptr != value.data() + value.size() || p < min_priority || p > max_priority) {
        error = fmt::format("campaign {}: field 'priority' is '{}', expected {}..{}", id, value,
                            min_priority, max_priority);
        return std::nullopt;
      }
      c.priority = p;
    } else if (name == "from") {
      c.from_address = std::string(value);
    } else if (name == "from_name") {
      c.from_name = std::string(value);
    } else if (name == "state") {
      c.state = std::string(value);
    } else if (name == "created_at") {
      c.created_at = std::string(value);
    } else if (name == "total") {
      std::int64_t t = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), t);
      if (ec != std::errc() || ptr != value.data() + value.size() || t < 0) {
        error = fmt::format("campaign {}: field 'total' is '{}', expected a count", id, value);
        return std::nullopt;
      }
      c.total = t;
    } else if (name == "sms_max_segments") {
      int n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || n < 1 || n > 255) {
        error = fmt::format("campaign {}: field 'sms_max_segments' is '{}', expected 1..255", id, value);
        return std::nullopt;
      }
      c.sms_max_segments = n;
    } else if (name.substr(0, template_field_prefix.size()) == template_field_prefix) {
      c.templates.emplace(name.substr(template_field_prefix.size()), value);
    } else if (name.substr(0, partial_field_prefix.size()) == partial_field_prefix) {
      c.partials.emplace(name.substr(partial_field_prefix.size()), value);
    }
  }
  if (!have_channel) {
    error = fmt::format("campaign {}: field 'channel' is missing", id);
    return std::nullopt;
  }
  return c;
}

const std::string_view record_outcomes_script = R"lua(
local group = ARGV[1]
local now = ARGV[2]
local recorded = 0
local add = {}
local released = {}
local counted = {}
local channel = nil
local clock = nil
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
local function now_ms()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
for i = 3, #ARGV, 9 do
  local id, state, member, reason, flags = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local attempts, reply = ARGV[i + 5], ARGV[i + 6]
  local c = 0
  if state ~= 'release' and redis.call('XACK', KEYS[1], group, id) == 1 then
    c = 1
    local f = nil
    if state == 'retry' then
      f = entry_fields(id)
      if f then
        local out = {}
        local origin = id
        for j = 1, #f, 2 do
          local name = f[j]
          if name == 'origin' then
            origin = f[j + 1]
          elseif name ~= 'attempt' and name ~= 'paused' then
            out[#out + 1] = name
            out[#out + 1] = f[j + 1]
          end
        end
        out[#out + 1] = 'attempt'
        out[#out + 1] = attempts
        out[#out + 1] = 'paused'
        out[#out + 1] = ARGV[i + 8]
        out[#out + 1] = 'origin'
        out[#out + 1] = origin
        local due = string.format('%.0f', now_ms() + tonumber(ARGV[i + 7]))
        redis.call('ZADD', KEYS[6], due,
                   cjson.encode({entry = id, fields = out, attempt = tonumber(attempts), reply = reply}))
        add['retrying'] = (add['retrying'] or 0) + 1
      else
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
)lua";

const std::string_view move_due_retries_script = R"lua(
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, m in ipairs(due) do
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
)lua";

const std::string_view requeue_dead_script = R"lua(
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
        out[#out + 1] = 'id'
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
  if state == 'done' then
    redis.call('HSET', KEYS[4], 'state', 'active')
    redis.call('HDEL', KEYS[4], 'finished_at')
    state = 'active'
  end
end
return {n, state}
)lua";

const std::string_view transition_script = R"lua(
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
for i = 3, #ARGV do
  if state == ARGV[i] then
    redis.call('HSET', KEYS[1], 'state', ARGV[1], ARGV[1] .. '_at', ARGV[2])
    return state
  end
end
return state
)lua";

const std::string_view append_events_script = R"lua(
local maxlen, at = ARGV[1], ARGV[2]
for i = 3, #ARGV, 8 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'campaign', ARGV[i], 'entry', ARGV[i + 1],
             'member', ARGV[i + 2], 'channel', ARGV[i + 3], 'state', ARGV[i + 4], 'reason', ARGV[i + 5],
             'reply', ARGV[i + 6], 'attempt', ARGV[i + 7], 'at', at)
end
return (#ARGV - 2) / 8
)lua";

}  // namespace budstikke::queue
