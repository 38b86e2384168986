-- acquire: decide the requests of one or more keys. Each key's requests
-- are decided in order, each against every dimension of the key's budget;
-- an admitted request is spent from all of them at once, a refused one
-- spends nothing. A key's state is read once and written once for all its
-- requests: the same outcome as one call per request, at the cost of one.
-- Several keys in one call (all on one node, in one cluster slot) share
-- the call's overhead and its clock reading, and are decided independently
-- of each other, in KEYS order. Mirrors State.Acquire in internal/keystate
-- applied to each request in turn: change both together, the differential
-- fuzz test compares them.
--
-- KEYS      the keys' hashes
-- ARGV[1]   now in µs, or 0 to read the Redis clock
-- then per key, in KEYS order: R, the number of its requests, and per
-- request (but see plain keys, below):
--           n (the cost in requests and in every limit), max wait µs (the
--           longest reservation accepted), probe lease µs (0: no probing),
--           C costs in other units, F fixed limits, D default limits (used
--           while no quota is known), then C pairs: unit, cost; then F+D
--           quintuples: field, kind, interval µs, burst, period µs. For a
--           pacing limit (kind 0) the field holds its TAT and the interval
--           is its emission interval; for a window limit (kind 1) the field
--           holds its sub-window counts, the interval is the sub-window's
--           length and the burst its rate (keystate.Limit.Args).
--           A key whose requests are all plain (pacing limits only, no
--           costs, no probe lease) sends -R instead of R, and its requests
--           in runs of identical ones: k, then the request once. Such a key
--           is tried on the fast path (decide_fast). Keys whose requests
--           are the same plain ones as the previous key's send '=' and how
--           many they are, c, in place of the first one's part: the c keys
--           send nothing else.
--           A key that sends R and whose requests ask for requests alone
--           (no costs, no fixed limits) is tried on the quota path
--           (decide_quota).
--
-- Reply (integers only), per key in KEYS order: -1 alone when the key holds
-- something other than a hash (nothing of it is decided or written), else
-- per request the shortest form, of a run with one limit (4 admitted | 5
-- refused by the limit, then the limit's TAT after the decision less now:
-- the caller works out the rest from the request), the short form of the
-- fast path (3 admitted | 2 refused by a limit, wait, remaining, reset) or
-- 11 + C values: allowed 0|1, wait µs (delay when allowed, retry-after
-- when not), remaining (-1: nothing limits the key), reset-after µs,
-- cause (0 none, 1 limit, 2 quota, 3 blocked, 4 probe), then one quota and
-- the block after the decision: quota limit, quota remaining, quota
-- reset-after µs (all 0 while no quota is known), blocked-for µs, and
-- report 0|1|3 (observe the response even without rate-limit headers; 3:
-- the fleet waits on it, Result.ReportNow); then the marks (Quota.Mark) of
-- the quotas an admitted request spent from, in requests and then per
-- cost (0: none).

local now = script_now(ARGV[1])

-- the reply of every key, in order
local reply = {}

local function min_remaining(acc, x)
  if acc < 0 or x < acc then return x end
  return acc
end

-- A plain key's requests come in runs of identical requests: k, then the
-- request's arguments once (see the header). run_size is how many
-- arguments the run at ARGV[i] takes, k included.
local function run_size(i)
  return 7 + 5 * (tonumber(ARGV[i + 5]) + tonumber(ARGV[i + 6]))
end

-- decide_plain decides the common case without the machinery of
-- decide_key (acquire_full.lua): requests for pacing limits only, without
-- costs or probes, on a key that holds nothing but those limits' TATs (and
-- its TTL's end ex), or nothing at all. It decides and writes exactly what
-- decide_key would (no block, quota or lease to check; a key that holds
-- nothing has room for every field), which the differential tests check,
-- and replies in short: 3 (admitted) or 2 (refused by a limit), wait,
-- remaining, reset; everything else is 0. The runs of the nreq requests
-- start at ARGV[i]; v[slot[f]] is what field f holds (nil or false:
-- nothing).
local function decide_plain(key, i, nreq, slot, v, ex)
  local tat, at = {}, {}
  local set, horizon = {}, 0
  local done = 0
  while done < nreq do
    local k = tonumber(ARGV[i])
    local n, max_wait = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    local count = tonumber(ARGV[i + 5]) + tonumber(ARGV[i + 6])
    -- limit l: field ARGV[lim + 5l], kind, T, B and P after it
    local lim = i + 2
    i = i + 7 + 5 * count
    done = done + k
    if max_wait > MAX_RESERVATION then max_wait = MAX_RESERVATION end
    for _ = 1, k do
      local gcra_wait = 0
      for l = 1, count do
        local a = lim + 5 * l
        local f = ARGV[a]
        local T, B, P = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
        local t = tat[f]
        if t == nil then t = tonumber(v[slot[f]] or 0) or 0 end
        t = clamp(t, now, now + math.max(P, B * T) + MAX_RESERVATION)
        at[l] = t
        local w = t + n * T - B * T - now
        if w > gcra_wait then gcra_wait = w end
      end
      local remaining, reset = -1, 0
      local admitted = gcra_wait <= max_wait
      for l = 1, count do
        local a = lim + 5 * l
        local T, B = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
        local t = at[l]
        if admitted then
          t = t + n * T
          local f = ARGV[a]
          if tat[f] == nil then
            set[#set + 1] = f
            set[#set + 1] = 0
          end
          tat[f] = t
          if t > horizon then horizon = t end
        end
        remaining = min_remaining(remaining, math.max(idiv(now + B * T - t, T), 0))
        if t - now > reset then reset = t - now end
      end
      local r = #reply
      if admitted then reply[r + 1] = 3 else reply[r + 1] = 2 end
      reply[r + 2] = gcra_wait
      reply[r + 3] = remaining
      reply[r + 4] = reset
    end
  end
  if horizon > 0 then
    for s = 1, #set, 2 do set[s + 1] = format('%d', tat[set[s]]) end
    local grown = grow_ttl(set, horizon, ex, now)
    redis.call('HSET', key, unpack(set))
    if grown then redis.call('PEXPIRE', key, idiv(grown - now + 999, 1000)) end
  end
end

-- one_run[first] is the request of the plain key whose arguments start at
-- ARGV[first], parsed, when its requests are one run with one limit
-- (false when they are not): its cost n*T, the room B*T, max wait, field,
-- the clamp's upper bound, and where the next key's arguments start. Keys
-- that repeat it (after '=') reuse it: their numbers are parsed once a
-- call.
local one_run = {}

local function parse_run(first, nreq)
  local i = first + 1
  if tonumber(ARGV[i]) ~= nreq or tonumber(ARGV[i + 5]) + tonumber(ARGV[i + 6]) ~= 1 then
    return false
  end
  local T, B, P = tonumber(ARGV[i + 9]), tonumber(ARGV[i + 10]), tonumber(ARGV[i + 11])
  local max_wait = tonumber(ARGV[i + 2])
  if max_wait > MAX_RESERVATION then max_wait = MAX_RESERVATION end
  local n = tonumber(ARGV[i + 1])
  return {n * T, B * T, max_wait, ARGV[i + 7], now + math.max(P, B * T) + MAX_RESERVATION, i + 12}
end

-- decide_run is decide_plain for one run of k requests with one limit
-- (run, from one_run), which needs no table of its own: held is what the
-- limit's field holds (false: nothing), ex the key's TTL's end. It replies
-- in the shortest form, 4 (admitted) or 5 (refused), then the TAT after
-- the decision less now: the caller, which knows the request and the
-- limit, works out the wait, remaining and reset from them.
local function decide_run(key, run, k, held, ex)
  local cost, room, max_wait, f, upper = run[1], run[2], run[3], run[4], run[5]
  local t = tonumber(held or 0) or 0
  local spent = false
  local r = #reply
  for _ = 1, k do
    if t < now then t = now elseif t > upper then t = upper end
    local gcra_wait = t + cost - room - now
    if gcra_wait < 0 then gcra_wait = 0 end
    if gcra_wait <= max_wait then
      t = t + cost
      spent = true
      reply[r + 1] = 4
    else
      reply[r + 1] = 5
    end
    reply[r + 2] = t - now
    r = r + 2
  end
  if spent then
    -- grow_ttl, for one field (the integers as text: see format)
    if t + 1000000 > ex then
      ex = t + 2000000
      redis.call('HSET', key, f, format('%d', t), 'ex', format('%d', ex))
      redis.call('PEXPIRE', key, idiv(ex - now + 999, 1000))
    else
      redis.call('HSET', key, f, format('%d', t))
    end
  end
end

-- decide_fast decides the requests of key, whose arguments start at
-- ARGV[first] (-R, then runs), when the caller says they are plain
-- (pacing limits only, no costs, no probes) and the key holds nothing but
-- the TATs they name and its TTL's end, or nothing at all: what
-- decide_key would decide and write, for the cost of one read when the
-- requests are one run with one limit (HGETALL: at most two fields on a
-- key it decides), two otherwise (HLEN, then HMGET of only those fields;
-- HLEN alone on a key that holds nothing). It returns where the next
-- key's arguments start, or nil, having decided nothing, when the key
-- holds anything else.
local function decide_fast(key, first, nreq)
  local run = one_run[first]
  if run == nil then
    run = parse_run(first, nreq)
    one_run[first] = run
  end
  if run then
    local h = redis.pcall('HGETALL', key)
    if h.err then return nil end
    local len = #h
    if len == 0 then
      decide_run(key, run, nreq, false, 0)
    elseif len == 4 then
      local f = run[4]
      if h[1] == 'ex' and h[3] == f then
        decide_run(key, run, nreq, h[4], stored(h[2]))
      elseif h[3] == 'ex' and h[1] == f then
        decide_run(key, run, nreq, h[2], stored(h[4]))
      else
        return nil
      end
    else
      return nil
    end
    return run[6]
  end
  local len = redis.pcall('HLEN', key)
  if type(len) == 'table' then
    -- Not a hash (see decide_key, which then fails the key alone).
    return nil
  end
  local i = first + 1
  -- v[slot[f]] is what field f holds, v[1] the TTL's end
  local fields, slot = {'ex'}, {}
  local done = 0
  while done < nreq do
    done = done + tonumber(ARGV[i])
    local after = i + run_size(i)
    for a = i + 7, after - 1, 5 do
      local f = ARGV[a]
      if not slot[f] then
        fields[#fields + 1] = f
        slot[f] = #fields
      end
    end
    i = after
  end
  local v = {}
  if len == #fields then
    v = redis.call('HMGET', key, unpack(fields))
    for s = 1, #fields do
      if not v[s] then return nil end
    end
  elseif len ~= 0 then
    return nil
  end
  decide_plain(key, first + 1, nreq, slot, v, stored(v[1] or 0))
  return i
end

-- expand writes the runs of a plain key's nreq requests, at ARGV[first]
-- (-R), out as decide_key reads them: R, then every request. It returns
-- them and where the next key's arguments start.
local function expand(first, nreq)
  local out, i, done = {nreq}, first + 1, 0
  while done < nreq do
    local k, size = tonumber(ARGV[i]), run_size(i)
    for _ = 1, k do
      for a = i + 1, i + size - 1 do out[#out + 1] = ARGV[a] end
    end
    done = done + k
    i = i + size
  end
  return out, i
end

-- load_full returns decide_key of acquire_full.lua, defining it and the
-- quota model it needs: lua.go puts them here, in this function, so a
-- call whose keys all take the fast path never creates their closures
-- (each captured upvalue costs the script time on every call). lua.go
-- also puts load_quota here: the quota model alone, in a table.
-- @full

-- the quota model (load_quota), once a key needs it
local quota_model

-- reply_admitted replies for a request the quota path admitted, at once,
-- from a quota of limit with left after it, resetting in reset_after µs:
-- the 11 values of decide_key's reply (the request's reset is the quota's
-- while the quota is not full), report and the request's mark.
local function reply_admitted(limit, left, reset_after, report, mark)
  local reset = 0
  if left < limit then reset = reset_after end
  local at = #reply
  reply[at + 1] = 1
  reply[at + 2] = 0
  reply[at + 3] = left
  reply[at + 4] = reset
  reply[at + 5] = 0
  reply[at + 6] = limit
  reply[at + 7] = left
  reply[at + 8] = reset_after
  reply[at + 9] = 0
  reply[at + 10] = report
  reply[at + 11] = mark
end

-- decide_steady is decide_quota for the quota a key holds most of the
-- time, one without a gain: what is available is the larger of the last
-- observed remaining and base less spent. It decodes the field's one
-- entry into locals and writes it back in one format, without the model's
-- tables and closures, which cost Redis more than the rest of the call;
-- it decides, replies and writes what the model would. s is the quota
-- field, report the decision's report, ex the key's TTL's end. It returns
-- false, having decided and written nothing, when the entry is anything
-- else.
local function decide_steady(key, first, nreq, total, s, report, ex)
  local u, l, w, r, o, a, p, sp, d, f, fa, rf, sl, inf, st, lo = string.match(s, QUOTA_PATTERN)
  if u ~= 'requests' or not (short_number(l) and short_number(w) and short_number(r) and
      short_number(o) and short_number(a) and short_number(p) and short_number(sp) and short_number(d) and
      short_number(f) and short_number(fa) and short_number(rf) and short_number(sl) and short_number(inf) and
      short_number(st) and short_number(lo)) then
    return false
  end
  if clamp(tonumber(p), 0, MAX_COUNT) ~= 0 then return false end
  l, w, r = clamp(tonumber(l), 0, MAX_COUNT), clamp(tonumber(w), 1, MAX_HORIZON), math.max(tonumber(r), 0)
  o, a, sp = clamp(tonumber(o), -1, MAX_COUNT), clamp(tonumber(a), 0, MAX_COUNT), clamp(tonumber(sp), 0, 2 * MAX_COUNT)
  rf, sl = clamp(tonumber(rf), 0, 2), clamp(tonumber(sl), 0, MAX_HORIZON)
  -- the window rolls at reset-at less early (roll_at)
  local early = 0
  if rf == 1 then early = idiv(sl, 2) end
  if o < total or now >= r - early then return false end
  f, fa, st = clamp(tonumber(f), 0, MAX_COUNT), math.max(tonumber(fa), 0), clamp(tonumber(st), 0, MAX_COUNT)
  local horizon = 0
  local i = first + 1
  for _ = 1, nreq do
    local n = tonumber(ARGV[i])
    i = i + 6 + 5 * tonumber(ARGV[i + 5])
    sp = sp + n
    o = math.max(o - n, 0)
    if now - fa > IN_FLIGHT_AGE then f = 0 end
    f, fa = f + n, now
    if r > now + MAX_HORIZON then r = now + MAX_HORIZON end
    if r + w > horizon then horizon = r + w end
    local left = math.max(o, a - sp, 0)
    local ends, reset_after = r - early, 0
    if ends > now + MAX_HORIZON then ends = now + MAX_HORIZON end
    if ends >= now then reset_after = ends - now end
    reply_admitted(l, left, reset_after, report, st + 1)
  end
  local set = {'q', format('requests %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d', l, w, r, o, a, 0, sp,
    clamp(tonumber(d), 0, MAX_COUNT), f, fa, rf, sl, clamp(tonumber(inf), 0, 1), st, clamp(tonumber(lo), 0, MAX_COUNT))}
  local grown = grow_ttl(set, horizon, ex, now)
  redis.call('HSET', key, unpack(set))
  if grown then redis.call('PEXPIRE', key, idiv(grown - now + 999, 1000)) end
  return true
end

-- decide_quota decides the common request of an HTTP client on a key whose
-- server quota is known: requests only (no costs, no fixed limits; the
-- default limits a known quota sets aside are skipped), on a key holding
-- one quota, in requests, whose window has not ended, whose last observed
-- remaining covers every request (so no probe applies and none waits),
-- and no block in force. It decides, replies and writes exactly what
-- decide_key would (the differential tests check it), without the tables
-- and closures decide_key builds for the general case, which cost more
-- than this decision; decide_steady without the model's, when it can. It
-- returns where the next key's arguments start, or nil, having decided
-- and written nothing, when the key or its requests are anything else.
local function decide_quota(key, first, nreq)
  local i, total = first + 1, 0
  for _ = 1, nreq do
    local n = tonumber(ARGV[i])
    if n < 1 or tonumber(ARGV[i + 1]) < 0 or ARGV[i + 3] ~= '0' or ARGV[i + 4] ~= '0' then return nil end
    total = total + n
    i = i + 6 + 5 * tonumber(ARGV[i + 5])
  end
  local after = i
  -- (a key that is not a hash replies an error, which has no v[4])
  local v = redis.pcall('HMGET', key, 'bu', 'th', 'ex', 'q')
  if type(v[4]) ~= 'string' or string.find(v[4], ';', 1, true) or stored(v[1]) > now then
    return nil
  end
  local report = 1
  if clamp(stored(v[2]), 0, MAX_THROTTLES) > 0 then report = 3 end
  if decide_steady(key, first, nreq, total, v[4], report, stored(v[3])) then return after end
  if not quota_model then quota_model = load_quota() end
  local m = quota_model
  local qs = m.decode_quotas(v[4])
  local q = qs[1]
  if #qs ~= 1 or q.u ~= 'requests' or q.o < total or now >= m.roll_at(q) then return nil end
  local horizon = 0
  i = first + 1
  for _ = 1, nreq do
    local n = tonumber(ARGV[i])
    i = i + 6 + 5 * tonumber(ARGV[i + 5])
    q.s = q.s + n
    q.o = math.max(q.o - n, 0)
    q.f, q.fa = m.in_flight(q, now) + n, now
    if q.r > now + MAX_HORIZON then q.r = now + MAX_HORIZON end
    if q.r + q.w > horizon then horizon = q.r + q.w end
    reply_admitted(q.l, math.max(m.available(q, now), 0), m.reset_after(q, now), report, q.st + 1)
  end
  local set = {'q', m.encode_quotas(qs)}
  local grown = grow_ttl(set, horizon, stored(v[3]), now)
  redis.call('HSET', key, unpack(set))
  if grown then redis.call('PEXPIRE', key, idiv(grown - now + 999, 1000)) end
  return after
end

local decide_key
-- plain is where the last plain key's arguments start (its -R); repeats
-- is how many keys after this one still send its requests (see '=')
local next_arg, plain, repeats = 2, nil, 0
for k = 1, #KEYS do
  local key, first = KEYS[k], next_arg
  local after
  if repeats == 0 and ARGV[first] == '=' then
    repeats = tonumber(ARGV[first + 1]) or 0
    if not plain or repeats < 1 then
      return redis.error_reply('ERR acquire: = with no plain key before it or no count after it')
    end
    first = first + 2
  end
  if repeats > 0 then
    -- the previous plain key's requests, in no arguments of its own
    repeats = repeats - 1
    after = first
    first = plain
  end
  local nreq = tonumber(ARGV[first])
  if nreq < 0 then
    -- The caller vouches that the requests are plain.
    nreq = -nreq
    plain = first
    next_arg = decide_fast(key, first, nreq)
    if not next_arg then
      local args
      args, next_arg = expand(first, nreq)
      if not decide_key then decide_key = load_full() end
      decide_key(key, 1, nreq, args)
    end
    next_arg = after or next_arg
  else
    next_arg = decide_quota(key, first, nreq)
    if not next_arg then
      if not decide_key then decide_key = load_full() end
      next_arg = decide_key(key, first, nreq, ARGV)
    end
  end
end
return reply
