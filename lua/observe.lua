-- observe: merge what one response said about the server's budget (header
-- sync). Safe under out-of-order responses: a newer window replaces the
-- stored one, the same window only ever lowers the remaining count and
-- postpones the reset, an older window is ignored. Mirrors State.Observe in
-- internal/keystate.
--
-- KEYS[1]   the key's hash
-- ARGV[1]   now in µs, or 0 to read the Redis clock
-- ARGV[2]   limit (0: unknown)
-- ARGV[3]   remaining
-- ARGV[4]   reset µs from now (0: no quota part)
-- ARGV[5]   window µs (0: unknown)
-- ARGV[6]   retry-after µs (0: none)
-- ARGV[7]   1 when the response refused the call for rate, else 0
-- ARGV[8]   tolerance µs: resets this close name the same window
-- ARGV[9]   backoff base µs, ARGV[10] backoff max µs (refusals without
--           Retry-After block for base, doubled per consecutive refusal)
--
-- Reply: window verdict (0 none, 1 newer, 2 same, 3 older), quota limit,
-- quota remaining, quota reset-after µs, blocked-for µs.

if redis.replicate_commands then pcall(redis.replicate_commands) end

local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local limit = tonumber(ARGV[2])
local remaining = tonumber(ARGV[3])
local reset = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local retry = tonumber(ARGV[6])
local limited = tonumber(ARGV[7])
local tol = tonumber(ARGV[8])
local backoff_base = tonumber(ARGV[9])
local backoff_max = tonumber(ARGV[10])

local names = {'ql', 'qr', 'qa', 'qw', 'bu', 'th', 'ex'}
local v = redis.call('HMGET', key, unpack(names))
local old = {}
for i = 1, 7 do old[i] = tonumber(v[i]) or 0 end
local ql, qr, qa, qw, bu, th, ex = old[1], old[2], old[3], old[4], old[5], old[6], old[7]

local verdict = 0
if reset > 0 then
  local reported = now + reset
  if qa <= now or reported > qa + tol then
    verdict = 1
    local l = limit
    if l == 0 then l = math.max(remaining, ql) end
    ql, qr, qa = l, math.min(remaining, l), reported
    if window > 0 then
      qw = window
    elseif reset > qw then
      qw = reset
    end
  elseif reported >= qa - tol then
    -- the same window: never more remaining, never an earlier reset
    verdict = 2
    if reported > qa then qa = reported end
    qr = math.min(qr, remaining)
    if limit > 0 then ql, qr = limit, math.min(qr, limit) end
    if window > 0 then qw = window end
  else
    verdict = 3
  end
end

if limited == 1 and retry == 0 then
  if bu + backoff_max < now then th = 0 end
  th = math.min(th + 1, 64)
  local d, i = backoff_base, 1
  while i < th and d < backoff_max do
    d = d * 2
    i = i + 1
  end
  if d > backoff_max then d = backoff_max end
  if now + d > bu then bu = now + d end
elseif limited == 0 then
  th = 0
end
if retry > 0 and now + retry > bu then bu = now + retry end

local new = {ql, qr, qa, qw, bu, th}
local set = {}
for i = 1, 6 do
  if new[i] ~= old[i] then
    set[#set + 1] = names[i]
    set[#set + 1] = new[i]
  end
end
if #set > 0 then
  -- ex is when the key's TTL ends; see acquire.lua
  local horizon = bu
  if qa > 0 and qa + qw > horizon then horizon = qa + qw end
  if horizon < now then horizon = now end
  local grow = horizon + 1000000 > ex
  if grow then
    ex = horizon + 2000000
    set[#set + 1] = 'ex'
    set[#set + 1] = ex
  end
  redis.call('HSET', key, unpack(set))
  if grow then redis.call('PEXPIRE', key, math.floor((ex - now + 999) / 1000)) end
end

local reset_after, blocked_for = qa - now, bu - now
if reset_after < 0 then reset_after = 0 end
if blocked_for < 0 then blocked_for = 0 end
return {verdict, ql, qr, reset_after, blocked_for}
