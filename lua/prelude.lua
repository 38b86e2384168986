-- prelude: the model of a server quota, after base.lua in every script
-- (in acquire, loaded only for a key its fast path cannot decide; see
-- lua.go), mirroring internal/keystate (quota.go) line for line: change
-- both together, the differential fuzz test compares them.

-- The quotas' field and its pattern are in base.lua (acquire's quota path
-- reads it without this model).

local function decode_quotas(s)
  local qs = {}
  if type(s) ~= 'string' then return qs end
  for entry in string.gmatch(s, '[^;]+') do
    local u, l, w, r, o, a, p, sp, d, fl, fa, rf, sl, inf, st, lo = string.match(entry, QUOTA_PATTERN)
    if u and #u <= 32 and #qs < MAX_QUOTAS and short_number(l) and short_number(w) and short_number(r) and
        short_number(o) and short_number(a) and short_number(p) and short_number(sp) and short_number(d) and
        short_number(fl) and short_number(fa) and short_number(rf) and short_number(sl) and short_number(inf) and short_number(st) and short_number(lo) then
      qs[#qs + 1] = {
        u = u,
        l = clamp(tonumber(l), 0, MAX_COUNT),
        w = clamp(tonumber(w), 1, MAX_HORIZON),
        r = math.max(tonumber(r), 0),
        o = clamp(tonumber(o), -1, MAX_COUNT),
        a = clamp(tonumber(a), 0, MAX_COUNT),
        p = clamp(tonumber(p), 0, MAX_COUNT),
        s = clamp(tonumber(sp), 0, 2 * MAX_COUNT),
        d = clamp(tonumber(d), 0, MAX_COUNT),
        f = clamp(tonumber(fl), 0, MAX_COUNT),
        fa = math.max(tonumber(fa), 0),
        rf = clamp(tonumber(rf), 0, 2),
        sl = clamp(tonumber(sl), 0, MAX_HORIZON),
        inf = clamp(tonumber(inf), 0, 1),
        st = clamp(tonumber(st), 0, MAX_COUNT),
        lo = clamp(tonumber(lo), 0, MAX_COUNT),
      }
    end
  end
  return qs
end

local function encode_quotas(qs)
  local parts = {}
  for i, q in ipairs(qs) do
    parts[i] = q.u .. ' ' .. string.format('%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d', q.l, q.w, q.r, q.o, q.a, q.p, q.s, q.d, q.f, q.fa, q.rf, q.sl, q.inf, q.st, q.lo)
  end
  return table.concat(parts, ';')
end

local function find_quota(qs, unit)
  for i, q in ipairs(qs) do
    if q.u == unit then return i end
  end
  return 0
end

-- Quota.margin
local function margin(q)
  return math.min(math.max(idiv(q.w, 16), idiv(q.sl, 2)), idiv(q.w, 2))
end

-- Quota.rollAt
local function roll_at(q)
  if q.rf == 1 then return q.r - idiv(q.sl, 2) end
  return q.r
end

-- Quota.resetAfter
local function reset_after(q, now)
  local r = roll_at(q)
  if r > now + MAX_HORIZON then r = now + MAX_HORIZON end
  if r < now then return 0 end
  return r - now
end

-- Quota.start
local function start(q)
  if q.rf == 1 then return roll_at(q) - q.w + margin(q) end
  return q.r - q.w
end

-- Quota.ramp
local function ramp(q, now)
  if q.p == 0 then return q.a - q.s end
  local e = clamp(now - start(q), 0, q.w)
  local steps = idiv(e * RAMP_STEPS, q.w)
  return q.a + math.min(idiv((q.p + 1) * steps, RAMP_STEPS), q.p) - q.s
end

-- Quota.rampAbove
local function ramp_above(q, now)
  if q.p == 0 then return q.a - q.s end
  local e = clamp(now - start(q), 0, q.w)
  local steps = idiv(e * RAMP_STEPS, q.w)
  return q.a + math.min(idiv((q.p + 1) * steps + RAMP_STEPS - 1, RAMP_STEPS), q.p) - q.s
end

-- Quota.available
local function available(q, now)
  return math.max(q.o, ramp(q, now))
end

-- Quota.wait
local function quota_wait(q, now, need)
  if available(q, now) >= need then return 0 end
  local reset_at = now + reset_after(q, now)
  local short = need - q.a + q.s
  if q.p > 0 and short <= q.p then
    local steps = idiv(short * RAMP_STEPS + q.p, q.p + 1)
    local e = idiv(steps * q.w + RAMP_STEPS - 1, RAMP_STEPS)
    local at = start(q) + e
    if at < reset_at and at > now then return at - now end
  end
  return reset_at - now
end

-- Quota.inFlight
local function in_flight(q, now)
  if now - q.fa > IN_FLIGHT_AGE then return 0 end
  return q.f
end

-- Quota.target
local function target(q)
  if q.l <= 1 then return q.l end
  if q.rf == 1 then
    local m = idiv(q.l * idiv(margin(q) * RAMP_STEPS, q.w) + RAMP_STEPS - 1, RAMP_STEPS)
    return math.max(q.l - math.max(1, m), 1)
  end
  return q.l - 1
end

-- Quota.roll: false when the quota must be forgotten
local function roll(q, now)
  local ends = roll_at(q)
  if now < ends then return true end
  if q.l <= 0 then return false end
  local left = q.a + q.p - q.s
  if q.o > left then left = q.o end
  left = clamp(left, 0, q.l)
  if q.rf == 1 then left = 0 end
  local goal = target(q)
  local windows = idiv(now - ends, q.w) + 1
  if windows > 1 and goal > left then left = goal end
  if q.rf == 2 and left < 1 and q.l >= 1 then left = 1 end
  q.r = q.r + windows * q.w
  q.a, q.p, q.s, q.o = left, math.max(goal - left, 0), 0, -1
  return true
end

-- State.rollQuotas: returns the kept quotas and whether one was dropped
local function roll_quotas(qs, now)
  local kept, dropped = {}, false
  for _, q in ipairs(qs) do
    if roll(q, now) then
      kept[#kept + 1] = q
    else
      dropped = true
    end
  end
  return kept, dropped
end

-- State.shownQuota over quotas (the one in requests, else the first)
local function shown_quota(qs, now)
  local shown = 0
  for i, q in ipairs(qs) do
    if q.u == 'requests' then shown = i break end
  end
  if shown == 0 and #qs > 0 then shown = 1 end
  if shown == 0 then return 0, 0, 0 end
  local q = qs[shown]
  return q.l, math.max(available(q, now), 0), reset_after(q, now)
end
