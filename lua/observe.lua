-- observe: merge what responses said about the server's budget (header
-- sync), safe under out-of-order responses. Mirrors State.Observe in
-- internal/keystate, applied to each observation in turn at one now (a
-- deferred batch costs one call, one read and one write): per quota, the
-- same window (resets within the tolerance) keeps the lower remaining and
-- the later reset; a later window, or one the server produced in a later
-- second (its Date), replaces it; an older one is ignored. Then the block:
-- a Retry-After extends it, a refusal without timing information starts or
-- steps a backoff streak unless a block is already in force, a success ends
-- the streak, and a probe's response without rate-limit headers releases
-- the probe lease.
--
-- KEYS[1]   the key's hash
-- ARGV[1]   now in µs, or 0 to read the Redis clock
-- ARGV[2]   tolerance µs: resets this close name the same window (at most
--           a quarter of the window, at least the reset's slack)
-- ARGV[3]   backoff base µs, ARGV[4] backoff max µs
-- then, per observation, in the order they are merged:
--   retry-after µs (0: none)
--   flags: 1 refused for rate, 2 succeeded (2xx/3xx), 4 bare (no
--     rate-limit information), 8 settling (the caller reports what each
--     request was charged: subtract what is in flight)
--   the server's second when it produced the response (0: unknown)
--   C, the number of charges, then per charge: unit, units (what the
--     request was spent at admission, no longer in flight), mark (the
--     quota's settled count + 1 at admission; 0: unknown)
--   R, the number of refunds, then per refund: unit, units (spent for a
--     request that never reached the server: given back)
--   Q, the number of quotas, then per quota: unit, limit (0: unknown),
--     remaining, reset µs, window µs (0: unknown), slack µs
--
-- Reply: one quota after the last merge (limit, remaining, reset-after µs;
-- all 0 when none: the one in requests, else the first), blocked-for µs.

local key = KEYS[1]
local now = script_now(ARGV[1])
local tolerance = tonumber(ARGV[2])
local backoff_base = tonumber(ARGV[3])
local backoff_max = tonumber(ARGV[4])

local names = {'bu', 'th', 'pl', 'nh', 'ac', 'as', 'rc', 'ex', 'q'}
local v = redis.call('HMGET', key, unpack(names))
local old = {stored(v[1]), clamp(stored(v[2]), 0, MAX_THROTTLES), stored(v[3]), stored(v[4]),
  clamp(stored(v[5]), 0, MAX_COUNT), stored(v[6]), clamp(stored(v[7]), 0, MAX_COUNT)}
local bu, th, pl, nh, ac, as_, rc = old[1], old[2], old[3], old[4], old[5], old[6], old[7]
local ex = stored(v[8])
local quotas = decode_quotas(v[9])

-- the observation being merged: its first argument's index and its fields
local at, retry, limited, succeeded, bare, settling, date, ncharged, nrefunded, nq

-- State.mergeQuota
local function merge(unit, limit, remaining, reset, window, slack, mark, charged)
  local reported = now + reset
  local length = math.max(reset - slack, 1)
  local qi = find_quota(quotas, unit)
  if qi == 0 then
    if #quotas >= MAX_QUOTAS then return end
    local w = window
    if w <= 0 then w = length end
    quotas[#quotas + 1] = {u = unit, l = limit, w = w, r = reported, o = remaining, a = remaining, p = 0, s = 0, d = date, f = 0, fa = 0, rf = 0, sl = slack, inf = 0, st = 0, lo = remaining}
    return
  end
  local q = quotas[qi]
  if q.inf == 1 then
    local w = window
    if w <= 0 then w = length end
    quotas[qi] = {u = unit, l = limit, w = w, r = reported, o = remaining, a = remaining, p = 0, s = 0, d = date, f = 0, fa = 0, rf = 0, sl = slack, inf = 0, st = 0, lo = remaining}
    return
  end
  local w = q.w
  if window > 0 then w = window end
  local tol = math.max(math.min(tolerance, idiv(w, 4)), slack)
  local newer = date > 0 and q.d > 0 and date > q.d
  local older = date > 0 and q.d > 0 and date < q.d
  local same_window = reported - q.r <= tol and q.r - reported <= tol
  local ordered = newer or (same_window and q.o >= 0 and remaining <= q.lo)
  -- Quota.settledSince
  local meanwhile, known = 0, mark > 0 and mark - 1 <= q.st
  if known and not ordered then meanwhile = q.st - (mark - 1) end
  local fresh = remaining
  if settling then fresh = math.max(remaining - in_flight(q, now) - meanwhile, 0) end
  local raise = settling and (ordered or known)
  local unspent = remaining + in_flight(q, now) + charged
  if limit > 0 then
    q.l = limit
  elseif q.l > 0 and remaining > q.l then
    q.l = remaining
  end
  -- Quota.learnRefill
  local function learn_refill()
    if unspent < target(q) - math.max(1, idiv(target(q), 8)) then
      q.rf = 1
    elseif q.rf == 0 then
      q.rf = 2
    end
  end
  -- Quota.reanchor
  local function reanchor(may_raise)
    local rv = ramp_above(q, now)
    if fresh < rv then
      q.s = q.s + rv - fresh
    elseif fresh > rv and may_raise and q.rf == 1 then
      q.s = q.s - (fresh - rv)
      if q.s < 0 then
        q.a, q.s = math.min(q.a - q.s, math.max(q.l, 0)), 0
      end
      q.p = math.max(math.min(q.p, target(q) - q.a), 0)
    end
  end
  local function learn_window(earlier)
    if window > 0 then
      q.w = window
    elseif earlier then
      q.w = length
    elseif length > q.w then
      q.w = length
    end
  end
  local assumed = q.o < 0
  if same_window then
    if settling then
      if newer and q.o >= 0 and fresh > q.o and q.u == 'requests' then q.rf = 1 end
      if assumed then learn_refill() end
    end
    if newer or assumed then
      q.o = fresh
    elseif raise and fresh > q.o then
      q.o = fresh
    elseif remaining < q.o then
      q.o = remaining
    end
    if assumed or remaining < q.lo then q.lo = remaining end
    reanchor((newer or assumed) and settling)
    if reported > q.r then q.r, q.sl = reported, slack end
    learn_window(false)
  elseif reported > q.r and not older then
    local left = clamp(available(q, now), 0, math.max(q.l, 0))
    learn_window(false)
    q.r, q.sl, q.a, q.p, q.s = reported, slack, left, math.max(target(q) - left, 0), 0
    q.s = ramp(q, now) - left
    q.o, q.lo = fresh, remaining
    if settling then learn_refill() end
    reanchor(not older and settling)
  elseif reported < q.r and (newer or assumed and not older) then
    learn_window(true)
    q.r, q.sl, q.o, q.a, q.p, q.s = reported, slack, fresh, fresh, 0, 0
    q.lo = remaining
  end
  if date > q.d then q.d = date end
end

-- the mark and units of the charge in unit (chargeOf)
local function charge_of(unit)
  for c = 1, ncharged do
    local u = at + 1 + 3 * c
    if ARGV[u] == unit then return tonumber(ARGV[u + 2]), tonumber(ARGV[u + 1]) end
  end
  return 0, 0
end

at = 5
while at <= #ARGV do
  retry = tonumber(ARGV[at])
  local flags = tonumber(ARGV[at + 1])
  limited = flags % 2 == 1
  succeeded = math.floor(flags / 2) % 2 == 1
  bare = math.floor(flags / 4) % 2 == 1
  settling = math.floor(flags / 8) % 2 == 1
  date = tonumber(ARGV[at + 2])
  ncharged = tonumber(ARGV[at + 3])
  nrefunded = tonumber(ARGV[at + 4 + 3 * ncharged])
  nq = tonumber(ARGV[at + 5 + 3 * ncharged + 2 * nrefunded])
  local dropped
  quotas, dropped = roll_quotas(quotas, now)
  if dropped then pl = 0 end

  for c = 1, ncharged do
    local qi = find_quota(quotas, ARGV[at + 1 + 3 * c])
    if qi > 0 then
      local q = quotas[qi]
      q.f = math.max(in_flight(q, now) - tonumber(ARGV[at + 2 + 3 * c]), 0)
    end
  end

  -- Quota.refund
  for c = 1, nrefunded do
    local u = at + 3 + 3 * ncharged + 2 * c
    local qi = find_quota(quotas, ARGV[u])
    if qi > 0 then
      local q, n = quotas[qi], tonumber(ARGV[u + 1])
      q.f = math.max(in_flight(q, now) - n, 0)
      q.s = math.max(q.s - n, 0)
      if q.o >= 0 then
        q.o = q.o + n
        if q.l > 0 and q.o > q.l then q.o = q.l end
      end
    end
  end

  local spent = false
  local a = at + 6 + 3 * ncharged + 2 * nrefunded
  for _ = 1, nq do
    local remaining = tonumber(ARGV[a + 2])
    if remaining == 0 then spent = true end
    merge(ARGV[a], tonumber(ARGV[a + 1]), remaining, tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), charge_of(ARGV[a]))
    a = a + 6
  end
  -- counted as settled after the merge (Quota.addSettled)
  for c = 1, ncharged do
    local qi = find_quota(quotas, ARGV[at + 1 + 3 * c])
    if qi > 0 then
      local q = quotas[qi]
      q.st = q.st + tonumber(ARGV[at + 2 + 3 * c])
      if q.st > MAX_COUNT then q.st = 0 end
    end
  end
  if nq > 0 or limited or retry > 0 then pl = 0 end

  local blocked = bu
  if blocked > now + MAX_HORIZON then blocked = now + MAX_HORIZON end
  -- State.infer
  if limited and retry > 0 and nq == 0 then
    local qi = find_quota(quotas, 'requests')
    if qi == 0 and #quotas == 0 and as_ > 0 then
      rc = rc + 1
      quotas[1] = {u = 'requests', l = math.max(ac - rc, 1), w = math.max(retry, now - as_), r = now + retry,
        o = 0, a = 0, p = 0, s = 0, d = date, f = 0, fa = 0, rf = 0, sl = 0, inf = 1, st = 0, lo = 0}
    elseif qi > 0 and quotas[qi].inf == 1 then
      local q = quotas[qi]
      if blocked > now and as_ > 0 then
        rc = rc + 1
        q.l = math.max(ac - rc, 1)
        q.o, q.a = math.min(q.o, q.l), math.min(q.a, q.l)
      else
        q.l = math.max(idiv(q.l * 3, 4), 1)
        q.r = math.max(q.r, now + retry)
        q.o, q.a, q.p, q.s = 0, 0, 0, 0
      end
    end
  end
  if retry > 0 then
    if now + retry > blocked then blocked = now + retry end
  elseif limited and not spent and blocked <= now then
    -- a refusal without timing information, not one of those that arrive
    -- while the block an earlier one caused is in force
    if blocked + backoff_max < now then th = 0 end
    th = math.min(th + 1, MAX_THROTTLES)
    local d, j = backoff_base, 1
    while j < th and d < backoff_max do
      d = d * 2
      j = j + 1
    end
    if d > backoff_max then d = backoff_max end
    if now + d > blocked then blocked = now + d end
  end
  bu = blocked
  if succeeded then th = 0 end
  if bare then
    if pl > now then pl = now end
    if succeeded and nq == 0 and #quotas == 0 then nh = now + BARE_FOR end
  end
  at = a
end

local new = {bu, th, pl, nh, ac, as_, rc}
local set = {}
for j = 1, 7 do
  if new[j] ~= old[j] then
    set[#set + 1] = names[j]
    set[#set + 1] = new[j]
  end
end
local encoded = encode_quotas(quotas)
local q_changed = encoded ~= (v[9] or '')
if q_changed and encoded ~= '' then
  set[#set + 1] = 'q'
  set[#set + 1] = encoded
end
if q_changed and encoded == '' and v[9] then redis.call('HDEL', key, 'q') end
if #set > 0 then
  local horizon = math.max(bu, pl, nh)
  if as_ > 0 and as_ + 60000000 > horizon then horizon = as_ + 60000000 end
  for _, q in ipairs(quotas) do
    if q.r + q.w > horizon then horizon = q.r + q.w end
  end
  local grown = grow_ttl(set, horizon, ex, now)
  redis.call('HSET', key, unpack(set))
  if grown then redis.call('PEXPIRE', key, idiv(grown - now + 999, 1000)) end
end

local ql, qr, qra = shown_quota(quotas, now)
local blocked_for = bu - now
if blocked_for < 0 then blocked_for = 0 end
return {ql, qr, qra, blocked_for}
