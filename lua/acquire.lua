-- acquire: decide R requests for one key, in order, each against every
-- dimension of the key's budget; an admitted request is spent from all of
-- them at once, a refused one spends nothing. The state is read once and
-- written once for the whole group: the same outcome as R separate calls,
-- at the cost of one. Mirrors State.Acquire in internal/keystate applied to
-- each request in turn: change both together, the differential fuzz test
-- compares them.
--
-- KEYS[1]   the key's hash
-- ARGV[1]   now in µs, or 0 to read the Redis clock
-- ARGV[2]   R, the number of requests
-- then per request:
--           n (the cost), max wait µs (the longest reservation accepted),
--           F fixed limits, D default limits (used while no quota is
--           known), then F+D triples: TAT field, emission interval µs, burst
--
-- Reply (integers only), 9 per request: allowed 0|1, wait µs (delay when
-- allowed, retry-after when not), remaining (-1: nothing limits the key),
-- reset-after µs, cause (0 none, 1 limit, 2 quota, 3 blocked), then the
-- quota and block after the decision: quota limit, quota remaining, quota
-- reset-after µs (all 0 while no quota is known), blocked-for µs.

if redis.replicate_commands then pcall(redis.replicate_commands) end

local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- floor(a/b) for integers, exact even where a/b rounds across an integer
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local function min_remaining(acc, x)
  if acc < 0 or x < acc then return x end
  return acc
end

-- Gather the TAT fields the requests name. The requests are read straight
-- from ARGV, here and again below, so a call builds no table per request.
local nreq = tonumber(ARGV[2])
local fields, slot = {'bu', 'ql', 'qr', 'qa', 'qw', 'ex'}, {}
local i = 3
for _ = 1, nreq do
  local count = tonumber(ARGV[i + 2]) + tonumber(ARGV[i + 3])
  i = i + 4
  for _ = 1, count do
    local f = ARGV[i]
    if not slot[f] then
      fields[#fields + 1] = f
      slot[f] = #fields
    end
    i = i + 3
  end
end

local v = redis.call('HMGET', key, unpack(fields))
local bu = tonumber(v[1]) or 0
local ql = tonumber(v[2]) or 0
local qr = tonumber(v[3]) or 0
local qa = tonumber(v[4]) or 0
local qw = tonumber(v[5]) or 0
local ex = tonumber(v[6]) or 0
local tat, dirty = {}, {}
for f, s in pairs(slot) do tat[f] = tonumber(v[s]) or 0 end
local quota_dirty, horizon = false, 0

local reply, at = {}, {}
i = 3
for _ = 1, nreq do
  local n, max_wait = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local nfixed, ndefault = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  -- limit l of this request: field ARGV[lim + 3l], T and B after it
  local lim = i + 1
  i = i + 4 + 3 * (nfixed + ndefault)
  -- the server quota in effect now; once its reset passed it counts as
  -- refilled to the last known limit in the following window
  local known, qr_eff, qa_eff = false, 0, 0
  if qa > 0 then
    if qa > now then
      known, qr_eff, qa_eff = true, qr, qa
    elseif ql > 0 then
      local w = qw
      if w < 1 then w = 1 end
      known, qr_eff, qa_eff = true, ql, qa + (idiv(now - qa, w) + 1) * w
    end
  end
  local count = nfixed
  if not known then count = nfixed + ndefault end

  local wait, cause = 0, 0
  if bu > now then wait, cause = bu - now, 3 end
  if known and qr_eff < n and qa_eff - now > wait then wait, cause = qa_eff - now, 2 end

  local gcra_wait = 0
  for l = 1, count do
    local a = lim + 3 * l
    local t = tat[ARGV[a]]
    if t < now then t = now end
    at[l] = t
    local T = tonumber(ARGV[a + 1])
    local w = t + n * T - tonumber(ARGV[a + 2]) * T - now
    if w > gcra_wait then gcra_wait = w end
  end

  local blocked_for = bu - now
  if blocked_for < 0 then blocked_for = 0 end
  local remaining, reset = -1, 0
  if wait > 0 or gcra_wait > max_wait then
    if gcra_wait > wait then wait, cause = gcra_wait, 1 end
    if bu > now then remaining, reset = 0, bu - now end
    if known then
      remaining = min_remaining(remaining, qr_eff)
      if qr_eff < ql and qa_eff - now > reset then reset = qa_eff - now end
    end
    for l = 1, count do
      local a = lim + 3 * l
      local T = tonumber(ARGV[a + 1])
      local r = idiv(now + tonumber(ARGV[a + 2]) * T - at[l], T)
      if r < 0 then r = 0 end
      remaining = min_remaining(remaining, r)
      if at[l] - now > reset then reset = at[l] - now end
    end
    reply[#reply + 1] = 0
    reply[#reply + 1] = wait
    reply[#reply + 1] = remaining
    reply[#reply + 1] = reset
    reply[#reply + 1] = cause
  else
    for l = 1, count do
      local a = lim + 3 * l
      local T = tonumber(ARGV[a + 1])
      local t = at[l] + n * T
      tat[ARGV[a]] = t
      dirty[ARGV[a]] = true
      local r = idiv(now + tonumber(ARGV[a + 2]) * T - t, T)
      if r < 0 then r = 0 end
      remaining = min_remaining(remaining, r)
      if t - now > reset then reset = t - now end
      if t > horizon then horizon = t end
    end
    if known then
      qr_eff = qr_eff - n
      qr, qa = qr_eff, qa_eff
      quota_dirty = true
      remaining = min_remaining(remaining, qr_eff)
      if qr_eff < ql and qa_eff - now > reset then reset = qa_eff - now end
      if qa_eff + qw > horizon then horizon = qa_eff + qw end
    end
    local delay = gcra_wait
    if delay < 0 then delay = 0 end
    reply[#reply + 1] = 1
    reply[#reply + 1] = delay
    reply[#reply + 1] = remaining
    reply[#reply + 1] = reset
    reply[#reply + 1] = 0
  end
  if known then
    reply[#reply + 1] = ql
    reply[#reply + 1] = qr_eff
    reply[#reply + 1] = qa_eff - now
  else
    reply[#reply + 1] = 0
    reply[#reply + 1] = 0
    reply[#reply + 1] = 0
  end
  reply[#reply + 1] = blocked_for
end

local set = {}
for f in pairs(dirty) do
  set[#set + 1] = f
  set[#set + 1] = tat[f]
end
if quota_dirty then
  set[#set + 1] = 'qr'
  set[#set + 1] = qr
  set[#set + 1] = 'qa'
  set[#set + 1] = qa
end
if #set > 0 then
  -- ex is when the key's TTL ends. It only grows (other callers' limits
  -- may reach further) and grows a second past the need, so most writes
  -- leave the TTL alone: the state lives one to two seconds past its
  -- horizon.
  local grow = horizon + 1000000 > ex
  if grow then
    ex = horizon + 2000000
    set[#set + 1] = 'ex'
    set[#set + 1] = ex
  end
  redis.call('HSET', key, unpack(set))
  if grow then redis.call('PEXPIRE', key, idiv(ex - now + 999, 1000)) end
end
return reply
