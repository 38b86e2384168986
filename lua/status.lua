-- status: read one key's raw state without changing it. The Go side
-- (State.Status in internal/keystate) derives the view, so the arithmetic
-- lives in one place.
--
-- KEYS[1]   the key's hash
-- ARGV[1]   now in µs, or 0 to read the Redis clock
-- ARGV[2..] fields of the configured limits
--
-- Reply: now, blocked-until, throttles, probe lease until, no-probe until
-- (times in µs), the quotas as the "q" field holds them (a string, "" when
-- none), admitted, admitted-since, refused, then one value per field: a
-- pacing limit's TAT (0 when absent), a window limit's counts as its field
-- holds them (a string, "" when absent; keystate.DecodeWindow reads it).

local key = KEYS[1]
local now = script_now(ARGV[1])
local fields = {'bu', 'th', 'pl', 'nh', 'q', 'ac', 'as', 'rc'}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
local v = redis.call('HMGET', key, unpack(fields))
local reply = {now, stored(v[1]), clamp(stored(v[2]), 0, MAX_THROTTLES), stored(v[3]), stored(v[4]), v[5] or '',
  clamp(stored(v[6]), 0, MAX_COUNT), stored(v[7]), clamp(stored(v[8]), 0, MAX_COUNT)}
for i = 9, #fields do
  if string.sub(fields[i], 1, 2) == 'w:' then
    reply[#reply + 1] = v[i] or ''
  else
    reply[#reply + 1] = tonumber(v[i]) or 0
  end
end
return reply
