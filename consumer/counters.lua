-- Count a group of events of one scope (a person or a team) in one day, atomically.
-- For each event: dedupe on its eventID hash, increment the day and month counters, and when a
-- counter reaches a threshold of its limit, add that decision to the scope's pending set. Because
-- increments are +1 and deduplicated, exactly one event reaches each threshold count of a period.
-- Pending decisions are returned on every call until the caller has published them and removed
-- them (SREM), so a crash between this script and the publish loses nothing: the records are
-- re-processed (no checkpoint was taken), come back as duplicates, and the pending set is returned.
--
-- A person's events are charged to a team in a second step (their team's keys live in another hash
-- slot, so one script cannot touch both on Redis Cluster). The person's script hands the events that
-- were new for the person to their team through the person's own *forward* hash, in the same atomic
-- step as counting them: a team counts only what its person counted first, under the team the person
-- had then. A batch redone after a team change finds the events seen for the person and forwards
-- nothing (no second team counts them). Each batch's hand-off is a field of its own (named with the
-- batch's nonce), removed only once the batch is committed in MySQL: until then a redo finds it, counts
-- it for the team it was meant for (the team's seen set makes that count once, and returns the team's
-- pending decisions again) and charges the rows to that team.
-- Events of a person whose team is not known yet go to their *hold* hash instead, until the team is
-- known (settle.lua moves them to the forward hash).
--
-- KEYS[1] seen set of the day   KEYS[2] day counters   KEYS[3] month counters
-- KEYS[4] limit overrides       KEYS[5] pending decisions
-- person: KEYS[6] forward hash  KEYS[7] hold hash
-- team:   KEYS[6] members of the day   KEYS[7] members of the month (quota keys counted in the team)
-- KEYS[8] the Redis marker (bedrock_usage/redis_marker.py)
-- ARGV[1] scope  ARGV[2] subject  ARGV[3] team (for a person: the team charged; '' = not known yet)
-- ARGV[4] period: "<day id>\31<month id>\31<expire-at, unix s>\31<decide daily 1/0>\31<decide monthly 1/0>"
-- ARGV[5] policy: "<default daily limit>\31<default monthly limit>\31<warning percentages, comma-separated>
--         \31<default daily cost limit>\31<default monthly cost limit>" (an empty limit: no quota; cost in
--         nano-dollars)
-- ARGV[6] forward: '1' = hand the person's new events to their team (live); '0' = don't (a rebuild
--         counts teams from the rows directly)
-- ARGV[7] the batch's nonce   ARGV[8] nonces whose hand-offs not to return (batches still in flight,
--         comma-separated): hand-off fields are "<team>\31<day>\31<month>\31<expire-at>\31<nonce>"
-- ARGV[9] how many of the person's forward entries those batches hold (while a backlog is pipelined,
--         the batch before this one is still in flight): only more than that are read
-- ARGV[10] the marker's epoch the caller expects: anything else in KEYS[8] (nothing: Redis lost its data)
--         and the script counts nothing and answers an error starting with BUMARKER
-- then one per event: "<hash>\31<kind>\31<id>\31<time>\31<principal>" where kind is '1' (a counted call),
-- '0' (a failed call: recorded, uses no quota) or 'L<cost>,<input>,<output>,<cache read>,<cache write 5m>,
-- <cache write 1h>' (an invocation log: its cost in nano-dollars and tokens; its id is the requestId, its hash
-- taken over "log:" + requestId so that it never meets a call's in the seen set)
-- (few, packed arguments: building and sending arguments is most of the client's cost per event)
-- Cost crossings: a log adds its cost at once, so a threshold is crossed when the counter goes from below it
-- to at or above it; the seen set makes each log count once, so exactly one log crosses each threshold.
-- Cost counters are integers (HINCRBY) compared as Lua numbers: exact below 2^53 nano-dollars ($9M).
-- Returns {new, duplicates, new failed calls, new-event flags ('1'/'0' per event, in order),
--          number of pending decisions, pending decision JSON..., then for a person the forward hash's
--          other entries as field, value pairs (left by a batch that was not committed)}

local FIXED = 10
-- First of all: a Redis that forgot (or was rebuilt since the caller last looked) counts nothing at all.
local marker = redis.call('GET', KEYS[8])
if marker ~= ARGV[10] then
  return redis.error_reply('BUMARKER expected ' .. ARGV[10] .. ', found ' .. (marker or 'nothing'))
end
local SEP = '\30'  -- between the events of one forward/hold entry
local day_id, month_id, expire_at, decide_daily, decide_monthly =
  string.match(ARGV[4], '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)$')
local default_daily, default_monthly, percent_list, default_daily_cost, default_monthly_cost =
  string.match(ARGV[5], '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)$')
local is_person = ARGV[1] == 'user'

-- A limit: the subject's override where it is set, else the default ('' for none). The same rule as
-- bedrock_usage.quota.Limits.or_defaults, written again because a Redis script cannot call Python.
local function limit_of(override, default)
  if override then return tonumber(override) end
  if default == '' then return nil end
  return tonumber(default)
end

local percents = {}
for p in string.gmatch(percent_list, '[^,]+') do percents[#percents + 1] = tonumber(p) end
percents[#percents + 1] = 100

local daily, monthly, daily_cost, monthly_cost = nil, nil, nil, nil
if decide_daily == '1' or decide_monthly == '1' then
  local overrides = redis.call('HMGET', KEYS[4], 'daily', 'monthly', 'daily_cost', 'monthly_cost')
  if decide_daily == '1' then
    daily = limit_of(overrides[1], default_daily)
    daily_cost = limit_of(overrides[3], default_daily_cost)
  end
  if decide_monthly == '1' then
    monthly = limit_of(overrides[2], default_monthly)
    monthly_cost = limit_of(overrides[4], default_monthly_cost)
  end
end
-- A day key that does not exist yet is created by this call: only then are expiries set (the seen
-- set, the day and the month keys are created together, by the first event of the day).
local fresh = redis.call('EXISTS', KEYS[2]) == 0
-- Forward entries of batches not committed, other than those still in flight (rare): a redo's.
local leftovers = {}
if is_person and redis.call('HLEN', KEYS[6]) > tonumber(ARGV[9]) then
  local skip = {[ARGV[7]] = true}
  for nonce in string.gmatch(ARGV[8], '[^,]+') do skip[nonce] = true end
  local entries = redis.call('HGETALL', KEYS[6])
  for i = 1, #entries, 2 do
    if not skip[string.match(entries[i], '^[^\31]*\31[^\31]*\31[^\31]*\31[^\31]*\31(.*)$')] then
      leftovers[#leftovers + 1] = entries[i]
      leftovers[#leftovers + 1] = entries[i + 1]
    end
  end
end

local function check(after, added, limit, quota, period, event)
  if not limit or limit <= 0 then return end
  for _, p in ipairs(percents) do
    local threshold = math.max(1, math.ceil(limit * p / 100))
    if after >= threshold and after - added < threshold then
      local kind = 'warning'
      if p >= 100 then kind = 'exceeded' end
      local _, _, event_id, event_time, principal = string.match(event, '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31(.*)$')
      redis.call('SADD', KEYS[5], cjson.encode({
        -- As strings: cjson writes numbers with 14 significant digits, and nano-dollars can have more.
        kind = kind, scope = ARGV[1], subject = ARGV[2], quota = quota, period = period,
        percent = p, usage = string.format('%d', after), limit = string.format('%d', limit), event_id = event_id,
        event_time = event_time, principal = principal, team = ARGV[3],
      }))
    end
  end
end

local new, duplicates, failed = 0, 0, 0
local flags = {}
local handed = {}
local members = {}
for i = FIXED + 1, #ARGV do
  local event = ARGV[i]
  local sep = string.find(event, '\31', 1, true)
  if redis.call('SADD', KEYS[1], string.sub(event, 1, sep - 1)) == 1 then
    new = new + 1
    flags[#flags + 1] = '1'
    handed[#handed + 1] = event
    local kind = string.byte(event, sep + 1)
    if kind == 49 then  -- '1': a counted call
      check(redis.call('HINCRBY', KEYS[2], 'req', 1), 1, daily, 'daily_requests', day_id, event)
      check(redis.call('HINCRBY', KEYS[3], 'req', 1), 1, monthly, 'monthly_requests', month_id, event)
    elseif kind == 76 then  -- 'L': an invocation log
      local cost, tin, tout, tcr, tcw5, tcw1 = string.match(event,
        '^[^\31]*\31L(%d+),(%d+),(%d+),(%d+),(%d+),(%d+)\31')
      for _, key in ipairs({KEYS[2], KEYS[3]}) do
        redis.call('HINCRBY', key, 'logs', 1)
        if tin ~= '0' then redis.call('HINCRBY', key, 'in', tin) end
        if tout ~= '0' then redis.call('HINCRBY', key, 'out', tout) end
        if tcr ~= '0' then redis.call('HINCRBY', key, 'cr', tcr) end
        if tcw5 ~= '0' then redis.call('HINCRBY', key, 'cw5', tcw5) end
        if tcw1 ~= '0' then redis.call('HINCRBY', key, 'cw1', tcw1) end
      end
      if cost ~= '0' then
        local added = tonumber(cost)
        check(redis.call('HINCRBY', KEYS[2], 'cost', cost), added, daily_cost, 'daily_cost', day_id, event)
        check(redis.call('HINCRBY', KEYS[3], 'cost', cost), added, monthly_cost, 'monthly_cost', month_id, event)
      end
    else
      failed = failed + 1
      redis.call('HINCRBY', KEYS[2], 'err', 1)
      redis.call('HINCRBY', KEYS[3], 'err', 1)
    end
  else
    duplicates = duplicates + 1
    flags[#flags + 1] = '0'
  end
  if not is_person and string.byte(event, sep + 1) ~= 48 then
    -- Members of a team: the people of its counted calls and metered logs, new or not (a rebuild fills
    -- them in too).
    -- Anchored: an unanchored '([^\31]*)$' would retry from every position (quadratic per event).
    members[string.match(event, '^[^\31]*\31[^\31]*\31[^\31]*\31[^\31]*\31(.*)$')] = true
  end
end

if new > 0 and fresh then
  -- The seen set lives as long as the month counter it protects from double counting.
  redis.call('EXPIREAT', KEYS[1], expire_at)
  redis.call('EXPIREAT', KEYS[2], expire_at)
  redis.call('EXPIREAT', KEYS[3], expire_at)
end

if is_person and ARGV[6] == '1' and #handed > 0 then
  -- This batch's own entry: a field of its own, never shared with another batch's.
  local target = KEYS[6]
  if ARGV[3] == '' then target = KEYS[7] end
  local field = ARGV[3] .. '\31' .. day_id .. '\31' .. month_id .. '\31' .. expire_at .. '\31' .. ARGV[7]
  redis.call('HSET', target, field, table.concat(handed, SEP))
  -- A guard against leaks only (entries are removed once committed, or settled): as long as the
  -- latest month's counters they belong to.
  if redis.call('EXPIRETIME', target) < tonumber(expire_at) then redis.call('EXPIREAT', target, expire_at) end
elseif not is_person and next(members) then
  local list = {}
  for key in pairs(members) do list[#list + 1] = key end
  for i = 1, #list, 1000 do  -- unpack() has a stack limit: a batch of a big team can have thousands
    local chunk = {unpack(list, i, math.min(i + 999, #list))}
    redis.call('SADD', KEYS[6], unpack(chunk))
    redis.call('SADD', KEYS[7], unpack(chunk))
  end
  -- Not only when fresh: a day whose first calls all failed created its counters without members.
  redis.call('EXPIREAT', KEYS[6], expire_at)
  redis.call('EXPIREAT', KEYS[7], expire_at)
end

local result = {new, duplicates, failed, table.concat(flags)}
local pending = {}
if redis.call('SCARD', KEYS[5]) > 0 then pending = redis.call('SMEMBERS', KEYS[5]) end
result[#result + 1] = #pending
for _, decision in ipairs(pending) do result[#result + 1] = decision end
for _, item in ipairs(leftovers) do result[#result + 1] = item end
return result
