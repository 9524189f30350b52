-- A person's team became known: hand the events held while it was not to that team, atomically.
-- Each hold entry ('' team) becomes a forward entry of the team; the caller then counts the forward
-- entries for the team (counters.lua, whose seen set makes a repeat harmless) and removes them.
-- A crash anywhere leaves the events in one hash or the other, never in neither.
--
-- KEYS[1] the person's hold hash   KEYS[2] the person's forward hash
-- ARGV[1] the team
-- Returns the forward hash's entries as field, value pairs (the moved ones and any left earlier).

local SEP = '\30'
local held = redis.call('HGETALL', KEYS[1])
for i = 1, #held, 2 do
  -- field: "<team>\31<day id>\31<month id>\31<expire-at>", the team empty while unknown
  local rest = string.sub(held[i], string.find(held[i], '\31', 1, true), -1)
  local field = ARGV[1] .. rest
  local before = redis.call('HGET', KEYS[2], field)
  local events = held[i + 1]
  if before then events = before .. SEP .. events end
  redis.call('HSET', KEYS[2], field, events)
end
if #held > 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('DEL', KEYS[1])
  if ttl > 0 and ttl > redis.call('PTTL', KEYS[2]) then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return redis.call('HGETALL', KEYS[2])
