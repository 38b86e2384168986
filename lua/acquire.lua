-- acquire: decide one request of cost n against every dimension of a key's
-- budget and, when it is admitted, spend it from all of them at once; a
-- refusal writes nothing. Mirrors State.Acquire in internal/keystate step
-- for step: change both together, the differential fuzz test compares them.
--
-- KEYS[1]   the key's hash
-- ARGV[1]   now in µs, or 0 to read the Redis clock
-- ARGV[2]   n, the cost
-- ARGV[3]   max wait in µs: the longest reservation the caller accepts
-- ARGV[4]   F, the number of fixed limits
-- ARGV[5]   D, the number of default limits (used while no quota is known)
-- ARGV[6..] F+D triples: TAT field, emission interval µs, burst
--
-- Reply (integers only): allowed 0|1, wait µs (delay when allowed,
-- retry-after when not), remaining (-1: nothing limits the key),
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
local n = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local nfixed = tonumber(ARGV[4])
local ndefault = tonumber(ARGV[5])

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

local fields = {'bu', 'ql', 'qr', 'qa', 'qw'}
for i = 1, nfixed + ndefault do
  fields[5 + i] = ARGV[3 + 3 * i]
end
local v = redis.call('HMGET', key, unpack(fields))
local bu = tonumber(v[1]) or 0
local ql = tonumber(v[2]) or 0
local qr = tonumber(v[3]) or 0
local qa = tonumber(v[4]) or 0
local qw = tonumber(v[5]) or 0

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

local tats, intervals, bursts = {}, {}, {}
local gcra_wait = 0
for i = 1, count do
  local t = tonumber(v[5 + i]) or 0
  if t < now then t = now end
  local T = tonumber(ARGV[4 + 3 * i])
  local B = tonumber(ARGV[5 + 3 * i])
  tats[i], intervals[i], bursts[i] = t, T, B
  local w = t + n * T - B * T - now
  if w > gcra_wait then gcra_wait = w end
end

if wait > 0 or gcra_wait > max_wait then
  if gcra_wait > wait then wait, cause = gcra_wait, 1 end
  local remaining, reset = -1, 0
  if bu > now then remaining, reset = 0, bu - now end
  if known then
    remaining = min_remaining(remaining, qr_eff)
    if qr_eff < ql and qa_eff - now > reset then reset = qa_eff - now end
  end
  for i = 1, count do
    local r = idiv(now + bursts[i] * intervals[i] - tats[i], intervals[i])
    if r < 0 then r = 0 end
    remaining = min_remaining(remaining, r)
    if tats[i] - now > reset then reset = tats[i] - now end
  end
  local blocked_for = bu - now
  if blocked_for < 0 then blocked_for = 0 end
  if known then
    return {0, wait, remaining, reset, cause, ql, qr_eff, qa_eff - now, blocked_for}
  end
  return {0, wait, remaining, reset, cause, 0, 0, 0, blocked_for}
end

local remaining, reset, horizon = -1, 0, 0
local set = {}
for i = 1, count do
  local t = tats[i] + n * intervals[i]
  set[#set + 1] = fields[5 + i]
  set[#set + 1] = t
  local r = idiv(now + bursts[i] * intervals[i] - t, intervals[i])
  if r < 0 then r = 0 end
  remaining = min_remaining(remaining, r)
  if t - now > reset then reset = t - now end
  if t > horizon then horizon = t end
end
if known then
  qr_eff = qr_eff - n
  set[#set + 1] = 'qr'
  set[#set + 1] = qr_eff
  set[#set + 1] = 'qa'
  set[#set + 1] = qa_eff
  remaining = min_remaining(remaining, qr_eff)
  if qr_eff < ql and qa_eff - now > reset then reset = qa_eff - now end
  if qa_eff + qw > horizon then horizon = qa_eff + qw end
end
if #set > 0 then
  redis.call('HSET', key, unpack(set))
  -- the TTL only grows: other callers' limits may reach further
  local ttl = idiv(horizon - now + 999, 1000) + 1000
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
local delay = gcra_wait
if delay < 0 then delay = 0 end
if known then
  return {1, delay, remaining, reset, 0, ql, qr_eff, qa_eff - now, 0}
end
return {1, delay, remaining, reset, 0, 0, 0, 0, 0}
