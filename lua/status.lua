-- status: read one key's raw state without changing it. The Go side
-- (State.Status in internal/keystate) derives the view, so the arithmetic
-- lives in one place.
--
-- KEYS[1]   the key's hash
-- ARGV[1]   now in µs, or 0 to read the Redis clock
-- ARGV[2..] TAT fields of the configured limits
--
-- Reply: now, blocked-until, quota limit, remaining, reset-at, window,
-- throttles, then one TAT per field (0 when absent); times in µs.

local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local fields = {'bu', 'ql', 'qr', 'qa', 'qw', 'th'}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
local v = redis.call('HMGET', key, unpack(fields))
local reply = {now}
for i = 1, #fields do reply[i + 1] = tonumber(v[i]) or 0 end
return reply
