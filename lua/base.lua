-- base: what every script shares, first in each one (lua.go): the bounds,
-- the integer helpers and the quotas' encoding, mirroring
-- internal/keystate line for line: change both together, the differential
-- fuzz test compares them.

if redis.replicate_commands then pcall(redis.replicate_commands) end

local MAX_HORIZON = 86400000000       -- smartratelimit.MaxHorizon, µs
local MAX_COUNT = 1099511627776       -- smartratelimit.MaxCount
local MAX_RESERVATION = 60000000      -- smartratelimit.MaxReservation, µs
local BARE_FOR = 600000000            -- smartratelimit.BareFor, µs
local MAX_QUOTAS = 8                  -- smartratelimit.MaxQuotas
local MAX_THROTTLES = 64
local RAMP_STEPS = 4096
local IN_FLIGHT_AGE = 60000000        -- keystate.InFlightAge, µs

-- format('%d', v) is an integer as the text Redis would store for it:
-- Redis writes a number it is given with %.17g, which costs the fast path
-- more than its decision.
local format = string.format

-- The quotas live in one field, "q": per quota "<unit> <limit> <window>
-- <reset-at> <seen> <base> <gain> <spent> <date> <in-flight>
-- <in-flight-at> <refills> <slack> <inferred> <settled> <low>", joined by
-- ';'. An entry that does not parse is skipped; every value is bounded
-- (ClampRanges). The model of a quota is prelude.lua's.
local QUOTA_PATTERN = '^([%l%d_%-]+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+)$'

-- at most 16 digits (the pattern has checked s is -?%d+); without a
-- substring, which a decode would otherwise make 15 times
local function short_number(s)
  local n = #s
  return n <= 16 or n == 17 and string.byte(s) == 45
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

local function clamp(v, lo, hi)
  if v < lo then return lo end
  if v > hi then return hi end
  return v
end

local function script_now(arg)
  local now = tonumber(arg)
  if now == 0 then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return now
end

-- a stored integer, never negative
local function stored(v)
  v = tonumber(v) or 0
  if v < 0 then return 0 end
  return v
end

-- ex is when the key's TTL ends. It only grows (other callers' limits may
-- reach further) and grows a second past the need, so most writes leave
-- the TTL alone: the state lives one to two seconds past its horizon.
-- Appends 'ex' to set when it grows and returns whether it did.
local function grow_ttl(set, horizon, ex, now)
  if horizon < now then horizon = now end
  if horizon + 1000000 > ex then
    ex = horizon + 2000000
    set[#set + 1] = 'ex'
    set[#set + 1] = format('%d', ex)
    return ex
  end
  return nil
end
