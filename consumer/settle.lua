-- A person's team became known: hand the events held while it was not to that team, atomically.
-- Each hold entry ('' team) becomes a forward entry of the team, named with the settling batch's nonce;
-- the caller then counts the forward entries for the team (counters.lua, whose seen set makes a repeat
-- harmless) and removes them once its batch is committed. A crash anywhere leaves the events in one hash
-- or the other, never in neither.
--
-- KEYS[1] the person's hold hash   KEYS[2] the person's forward hash   KEYS[3] the Redis marker
-- ARGV[1] the team   ARGV[2] the settling batch's nonce   ARGV[3] nonces not to return (in flight)
-- ARGV[4] the marker's epoch the caller expects (as in counters.lua: else nothing moves, BUMARKER error)
-- Fields: "<team>\31<day id>\31<month id>\31<expire-at>\31<nonce>" (the team empty while unknown)
-- Returns the forward hash's entries as field, value pairs, but those of the batches in flight.

local SEP = '\30'
-- On a Redis that forgot, the hold hash is gone: settling nothing would still let the caller commit the
-- held rows to the team in MySQL with no team count in Redis. Refuse, as counting does.
local marker = redis.call('GET', KEYS[3])
if marker ~= ARGV[4] then
  return redis.error_reply('BUMARKER expected ' .. ARGV[4] .. ', found ' .. (marker or 'nothing'))
end
local held = redis.call('HGETALL', KEYS[1])
for i = 1, #held, 2 do
  local day, month, expire_at = string.match(held[i], '^[^\31]*\31([^\31]*)\31([^\31]*)\31([^\31]*)\31')
  local field = ARGV[1] .. '\31' .. day .. '\31' .. month .. '\31' .. expire_at .. '\31' .. ARGV[2]
  local before = redis.call('HGET', KEYS[2], field)  -- several held batches of one day: one entry
  local events = held[i + 1]
  if before then events = before .. SEP .. events end
  redis.call('HSET', KEYS[2], field, events)
end
if #held > 0 then
  local expire = redis.call('EXPIRETIME', KEYS[1])
  redis.call('DEL', KEYS[1])
  if expire > redis.call('EXPIRETIME', KEYS[2]) then redis.call('EXPIREAT', KEYS[2], expire) end
end
local skip = {}
for nonce in string.gmatch(ARGV[3], '[^,]+') do skip[nonce] = true end
local out = {}
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  if not skip[string.match(entries[i], '^[^\31]*\31[^\31]*\31[^\31]*\31[^\31]*\31(.*)$')] then
    out[#out + 1] = entries[i]
    out[#out + 1] = entries[i + 1]
  end
end
return out
