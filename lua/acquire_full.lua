-- acquire_full: what acquire decides when its fast path cannot (costs,
-- probes, window limits, a quota, a block, counts, a key at its field
-- bound). lua.go places this file with prelude.lua inside acquire's
-- load_full, which returns decide_key; it sees acquire.lua's now, reply
-- and min_remaining.

local PROBE_POLL = 20000 -- keystate.ProbePoll, µs
local COUNT_SPAN = 60000000 -- keystate.CountSpan, µs

-- Window limits (internal/keystate/window.go): at most rate events in any
-- window of one period, counted in sub-windows of w µs aligned on the
-- epoch; a decision counts now's sub-window and the k - 1 before it. A
-- window's geometry g is {r = rate, w = sub-window µs, k = slots}.
local SUB_WINDOWS = 10 -- keystate.SubWindows

-- compileWindow: the geometry of rate events per period µs
local function window_geometry(rate, period)
  local w = idiv(period + SUB_WINDOWS - 1, SUB_WINDOWS)
  return {r = rate, w = w, k = idiv(period + w - 1, w) + 1}
end


-- DecodeWindow and clampRanges: "<newest> <count> <count> ...", words
-- separated by spaces, the first k + 1 of them of at most 16 decimal
-- digits each (the rest ignored); nil when it does not parse. st.c[j] is
-- what sub-window st.n - j + 1 holds. Read byte by byte: patterns cost
-- far more, and a full key reads every window it holds.
local function decode_window(s, g)
  if type(s) ~= 'string' then return nil end
  local st, words, pos = {n = 0, c = {}}, 0, 1
  local b = string.byte(s, pos)
  while b and words <= g.k do
    if b == 32 then
      pos = pos + 1
      b = string.byte(s, pos)
    else
      local x, digits = 0, 0
      while b and b ~= 32 do
        if b < 48 or b > 57 or digits == 16 then return nil end
        x, digits = x * 10 + b - 48, digits + 1
        pos = pos + 1
        b = string.byte(s, pos)
      end
      if words == 0 then
        st.n = x
      else
        st.c[words] = clamp(x, 0, g.r)
      end
      words = words + 1
    end
  end
  if words == 0 then return nil end
  for j = 1, g.k do
    if not st.c[j] then st.c[j] = 0 end
  end
  return st
end

-- EncodeWindow: up to the last count that is not 0, at least one
local function encode_window(st, g)
  local last = 1
  for j = 2, g.k do
    if st.c[j] ~= 0 then last = j end
  end
  local parts = {string.format('%d', st.n)}
  for j = 1, last do parts[j + 1] = string.format('%d', st.c[j]) end
  return table.concat(parts, ' ')
end

-- Window.view: the counts aligned on now's sub-window b (c[j] is what
-- sub-window b - j + 1 holds) and their sum. Counts stored ahead of now
-- count as now's.
local function window_view(st, g)
  local b = idiv(now, g.w)
  local c, count = {}, 0
  for j = 1, g.k do c[j] = 0 end
  if st then
    local d = b - math.min(st.n, b)
    for j = 1, g.k - d do
      c[j + d] = st.c[j]
      count = count + st.c[j]
    end
  end
  return b, c, count
end

-- windowView.wait: until enough of the oldest sub-windows left the span
local function window_wait(g, b, c, count, n)
  local need = count + n - g.r
  if need <= 0 then return 0 end
  for j = g.k, 1, -1 do
    need = need - c[j]
    if need <= 0 then return (b - j + 1 + g.k) * g.w - now end
  end
  return (b + g.k) * g.w - now
end

-- windowView.until: when the last count leaves the span; 0 when none
local function window_until(g, b, c)
  for j = 1, g.k do
    if c[j] > 0 then return (b - j + 1 + g.k) * g.w end
  end
  return 0
end

-- Window.until: window_until of the view of st, without building it
local function stored_until(st, g)
  if not st then return 0 end
  local b = idiv(now, g.w)
  local newest = math.min(st.n, b)
  for j = 1, g.k - (b - newest) do
    if st.c[j] > 0 then return (newest - j + 1 + g.k) * g.w end
  end
  return 0
end

-- State.makeRoom's bound (see decide_key)
local MAX_LIMIT_FIELDS = 64

-- bytewise a < b (Lua's own comparison follows the server's locale)
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for j = 1, n do
    local x, y = string.byte(a, j), string.byte(b, j)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- When a window field no request names goes stale, read cheaply (a full
-- key reads every one it holds at every new limit): from its name's period
-- and its newest sub-window, whose count the rules never leave at 0, as
-- stored_until reads what they write. Garbage reads as stale (0), so it
-- goes first.
local function loaded_end(g, value)
  local colon = string.find(g, ':', 3, true)
  local space = string.find(value, ' ', 1, true)
  if not colon or not space then return 0 end
  local period, newest = tonumber(string.sub(g, colon + 1)), tonumber(string.sub(value, 1, space - 1))
  if not period or not newest or period < 1 or period > 1e15 or newest ~= newest then return 0 end
  local w = idiv(period + SUB_WINDOWS - 1, SUB_WINDOWS)
  local b = idiv(now, w)
  if newest > b then newest = b end
  return (newest + idiv(period + w - 1, w) + 1) * w
end

-- decide_key decides the nreq requests of key, whose arguments start at
-- args[first] (R), appends their replies and returns where the next key's
-- arguments start. args is the script's ARGV, or a plain key's runs
-- written out (expand).
local function decide_key(key, first, nreq, args)
  local ARGV = args
  -- Gather the limit fields the requests name, and the geometry of each
  -- window among them. The requests are read straight from ARGV, here and
  -- again below, so a call builds no table per request.
  local fields, slot, geo = {'bu', 'th', 'pl', 'nh', 'ex', 'q', 'ac', 'as', 'rc'}, {}, {}
  local SCALARS = 9
  local i = first + 1
  for _ = 1, nreq do
    local ncost = tonumber(ARGV[i + 3])
    local count = tonumber(ARGV[i + 4]) + tonumber(ARGV[i + 5])
    i = i + 6 + 2 * ncost
    for _ = 1, count do
      local f = ARGV[i]
      if not slot[f] then
        fields[#fields + 1] = f
        slot[f] = #fields
        -- (the interval passed, ARGV[i + 2], is the sub-window computed the
        -- same way, in Go)
        if ARGV[i + 1] == '1' then geo[f] = window_geometry(tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])) end
      end
      i = i + 5
    end
  end

  local after = i
  local v = redis.pcall('HMGET', key, unpack(fields))
  if v.err then
    -- Not a hash: this key fails alone. (No other error can come from a
    -- read; should one, the whole call fails with it.)
    if not string.find(v.err, 'WRONGTYPE', 1, true) then error(v) end
    reply[#reply + 1] = -1
    return after
  end
  local bu = stored(v[1])
  local th = clamp(stored(v[2]), 0, MAX_THROTTLES)
  local pl = stored(v[3])
  local nh = stored(v[4])
  local ex = stored(v[5])
  local q_stored, pl_stored = v[6], pl
  -- State.Admitted, AdmittedSince, Refused
  local ac, as_, rc = clamp(stored(v[7]), 0, MAX_COUNT), stored(v[8]), clamp(stored(v[9]), 0, MAX_COUNT)
  local counts_stored = {ac, as_, rc}
  local quotas = decode_quotas(q_stored)
  -- tat[f] is a pacing field's TAT, win[f] a window field's counts (nil
  -- when absent or garbage); present[f] says the field exists.
  local tat, win, dirty, present = {}, {}, {}, {}
  for f, s in pairs(slot) do
    if geo[f] then
      win[f] = decode_window(v[s], geo[f])
    else
      tat[f] = tonumber(v[s]) or 0
    end
    present[f] = v[s] ~= false
  end
  local horizon = 0

  -- State.makeRoom: a key holds at most MAX_LIMIT_FIELDS limit fields, TATs
  -- and windows together. Past it the stale ones go (a TAT at or before now,
  -- a window whose counts all left its span), then the one that goes stale
  -- first, never one the request uses (own: its fields, a set).
  local tat_count, all_loaded, deleted, ends = nil, false, {}, {}

  -- when field g goes stale: its TAT, or when its window empties (0: it is
  -- empty, or garbage); ends holds it for the fields no request names, which
  -- this call never changes.
  local function stale_at(g)
    if ends[g] then return ends[g] end
    if geo[g] == nil then return tat[g] end
    return stored_until(win[g], geo[g])
  end

  local swept = false
  local function make_room(own)
    if tat_count == nil then
      local scalars = 0
      for s = 1, SCALARS do
        if v[s] then scalars = scalars + 1 end
      end
      tat_count = redis.call('HLEN', key) - scalars
    end
    if tat_count >= MAX_LIMIT_FIELDS and not swept then
      if not all_loaded then
        local h = redis.call('HGETALL', key)
        for j = 1, #h, 2 do
          local g = h[j]
          local prefix = string.sub(g, 1, 2)
          if present[g] == nil and prefix == 'g:' then
            tat[g], present[g] = tonumber(h[j + 1]) or 0, true
          elseif present[g] == nil and prefix == 'w:' then
            ends[g], present[g] = loaded_end(g, h[j + 1]), true
          end
        end
        all_loaded = true
      end
      -- Once swept, nothing goes stale for the rest of the call: now stands
      -- still and every field the call writes lies ahead of it.
      local count = 0
      for g, is in pairs(present) do
        if is then
          if stale_at(g) <= now then
            present[g], dirty[g], deleted[g] = false, nil, true
          else
            count = count + 1
          end
        end
      end
      tat_count, swept = count, true
    end
    if tat_count >= MAX_LIMIT_FIELDS then
      local low, low_at
      for g, is in pairs(present) do
        if is and not own[g] then
          local at_g = stale_at(g)
          if low == nil or at_g < low_at or at_g == low_at and bytes_less(g, low) then low, low_at = g, at_g end
        end
      end
      if low then
        present[low], dirty[low], deleted[low] = false, nil, true
        tat_count = tat_count - 1
      end
    end
    tat_count = tat_count + 1
  end

  local at = {}
  i = first + 1
  for _ = 1, nreq do
    local n, max_wait, probe = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    local ncost, nfixed, ndefault = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
    local costs = i + 6 -- cost c: unit ARGV[costs + 2c - 2], n after it
    -- limit l of this request: field ARGV[lim + 5l], kind, T, B and P after it
    local lim = costs + 2 * ncost - 5
    i = costs + 2 * ncost + 5 * (nfixed + ndefault)
    if max_wait > MAX_RESERVATION then max_wait = MAX_RESERVATION end
    local function need(unit)
      if unit == 'requests' then return n end
      for c = 1, ncost do
        if ARGV[costs + 2 * c - 2] == unit then return tonumber(ARGV[costs + 2 * c - 1]) end
      end
      return 0
    end
    local marks = {}

    local dropped
    quotas, dropped = roll_quotas(quotas, now)
    if dropped then pl = 0 end
    local count = nfixed
    if #quotas == 0 then count = nfixed + ndefault end

    local wait, cause = 0, 0
    local blocked = bu
    if blocked > now + MAX_HORIZON then blocked = now + MAX_HORIZON end
    if blocked > now then wait, cause = blocked - now, 3 end
    local shown = 0
    for qi, q in ipairs(quotas) do
      local w = quota_wait(q, now, need(q.u))
      if w > wait then wait, cause, shown = w, 2, qi end
    end

    -- the stored counts of window field f, nil when absent
    local function counts(f)
      if present[f] then return win[f] end
      return nil
    end

    local gcra_wait, win_wait = 0, 0
    for l = 1, count do
      local a = lim + 5 * l
      local f = ARGV[a]
      local g = geo[f]
      if g then
        local b, c, sum = window_view(counts(f), g)
        local w = window_wait(g, b, c, sum, n)
        if w > win_wait then win_wait = w end
      else
        local T, B, P = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
        local bound = math.max(P, B * T) + MAX_RESERVATION
        local t = 0
        if present[f] then t = tat[f] end
        at[l] = clamp(t, now, now + bound)
        local w = at[l] + n * T - B * T - now
        if w > gcra_wait then gcra_wait = w end
      end
    end

    -- State.probeState
    local applies, free = false, false
    local bare = nh
    if bare > now + BARE_FOR then bare = now + BARE_FOR end
    if probe > 0 and bare <= now then
      if #quotas == 0 then
        applies, free = ndefault == 0, pl == 0
      else
        local since = -1
        for _, q in ipairs(quotas) do
          if q.o < 0 and start(q) > since then since = start(q) end
        end
        applies, free = since >= 0, pl <= since
      end
    end
    local lease = pl
    if lease > now + MAX_HORIZON then lease = now + MAX_HORIZON end
    if wait == 0 and gcra_wait <= max_wait and win_wait == 0 and applies and lease > now then
      wait, cause = math.min(lease - now, PROBE_POLL), 4
    end

    local blocked_for = blocked - now
    if blocked_for < 0 then blocked_for = 0 end
    local report = 0
    if th > 0 then report = 3 elseif #quotas > 0 then report = 1 end
    local remaining, reset = -1, blocked_for

    -- State.quotaView
    local function quota_view()
      for qi, q in ipairs(quotas) do
        local a = math.max(available(q, now), 0)
        remaining = min_remaining(remaining, a)
        if a < q.l and reset_after(q, now) > reset then reset = reset_after(q, now) end
        if shown == 0 and q.u == 'requests' then shown = qi end
      end
      if shown == 0 and #quotas > 0 then shown = 1 end
      if shown > 0 then
        local q = quotas[shown]
        return q.l, math.max(available(q, now), 0), reset_after(q, now)
      end
      return 0, 0, 0
    end

    local allowed, delay = 0, 0
    if wait > 0 or gcra_wait > max_wait or win_wait > 0 then
      -- A window is never reserved: the request waits for the later of both.
      local lim_wait = math.max(gcra_wait, win_wait)
      if lim_wait > wait and cause ~= 4 then wait, cause = lim_wait, 1 end
      if blocked > now then remaining = 0 end
      for l = 1, count do
        local a = lim + 5 * l
        local f = ARGV[a]
        local g = geo[f]
        if g then
          local b, c, sum = window_view(counts(f), g)
          remaining = min_remaining(remaining, math.max(g.r - sum, 0))
          local u = window_until(g, b, c) - now
          if u > reset then reset = u end
        else
          local T, B = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
          remaining = min_remaining(remaining, math.max(idiv(now + B * T - at[l], T), 0))
          if at[l] - now > reset then reset = at[l] - now end
        end
      end
      delay = wait
    else
      -- Stored fields first, then new ones (which may push others out).
      local new = {}
      for l = 1, count do
        local a = lim + 5 * l
        local f = ARGV[a]
        local g = geo[f]
        if g then
          local b, c, sum = window_view(counts(f), g)
          c[1], sum = c[1] + n, sum + n
          if present[f] then
            win[f], dirty[f] = {n = b, c = c}, true
          else
            new[#new + 1] = l
          end
          local u = window_until(g, b, c)
          if u > horizon then horizon = u end
          remaining = min_remaining(remaining, g.r - sum)
          if u - now > reset then reset = u - now end
        else
          local T, B = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
          local t = at[l] + n * T
          if present[f] then
            tat[f], dirty[f] = t, true
          else
            new[#new + 1] = l
          end
          if t > horizon then horizon = t end
          remaining = min_remaining(remaining, math.max(idiv(now + B * T - t, T), 0))
          if t - now > reset then reset = t - now end
        end
      end
      local own
      for _, l in ipairs(new) do
        local a = lim + 5 * l
        local f = ARGV[a]
        if not own then
          own = {}
          for x = 1, count do own[ARGV[lim + 5 * x]] = true end
        end
        make_room(own)
        local g = geo[f]
        if g then
          local c = {}
          for j = 1, g.k do c[j] = 0 end
          c[1] = n
          win[f] = {n = idiv(now, g.w), c = c}
        else
          tat[f] = at[l] + n * tonumber(ARGV[a + 2])
        end
        present[f], dirty[f], deleted[f] = true, true, nil
      end
      for _, q in ipairs(quotas) do
        local spend = need(q.u)
        if spend > 0 then
          q.s = q.s + spend
          if q.o >= 0 then q.o = math.max(q.o - spend, 0) end
          q.f, q.fa = in_flight(q, now) + spend, now
        end
        if q.u == 'requests' then
          marks[1] = q.st + 1
        else
          for c = 1, ncost do
            if ARGV[costs + 2 * c - 2] == q.u then marks[c + 1] = q.st + 1 end
          end
        end
        if q.r > now + MAX_HORIZON then q.r = now + MAX_HORIZON end
        if q.r + q.w > horizon then horizon = q.r + q.w end
      end
      if applies and free then
        pl = now + probe
        if pl > horizon then horizon = pl end
        report = 3
      end
      if probe > 0 and #quotas == 0 then
        if as_ == 0 or now - as_ > COUNT_SPAN then as_, ac, rc = now, 0, 0 end
        ac = ac + n
        if as_ + COUNT_SPAN > horizon then horizon = as_ + COUNT_SPAN end
      end
      allowed, delay, cause = 1, math.max(gcra_wait, 0), 0
    end
    local ql, qr, qra = quota_view()
    reply[#reply + 1] = allowed
    reply[#reply + 1] = delay
    reply[#reply + 1] = remaining
    reply[#reply + 1] = reset
    reply[#reply + 1] = cause
    reply[#reply + 1] = ql
    reply[#reply + 1] = qr
    reply[#reply + 1] = qra
    reply[#reply + 1] = blocked_for
    reply[#reply + 1] = report
    for c = 1, ncost + 1 do
      reply[#reply + 1] = marks[c] or 0
    end
  end

  if horizon > 0 then
    local set = {}
    for f in pairs(dirty) do
      set[#set + 1] = f
      if geo[f] then
        set[#set + 1] = encode_window(win[f], geo[f])
      else
        set[#set + 1] = tat[f]
      end
    end
    local encoded = encode_quotas(quotas)
    local q_changed = encoded ~= (q_stored or '')
    if q_changed and encoded ~= '' then
      set[#set + 1] = 'q'
      set[#set + 1] = encoded
    end
    if pl ~= pl_stored then
      set[#set + 1] = 'pl'
      set[#set + 1] = pl
    end
    local counts = {ac, as_, rc}
    for j, f in ipairs({'ac', 'as', 'rc'}) do
      if counts[j] ~= counts_stored[j] then
        set[#set + 1] = f
        set[#set + 1] = counts[j]
      end
    end
    local del = {}
    for f in pairs(deleted) do del[#del + 1] = f end
    if q_changed and encoded == '' and q_stored then del[#del + 1] = 'q' end
    if #del > 0 then redis.call('HDEL', key, unpack(del)) end
    local grown = grow_ttl(set, horizon, ex, now)
    if #set > 0 then redis.call('HSET', key, unpack(set)) end
    if grown then redis.call('PEXPIRE', key, idiv(grown - now + 999, 1000)) end
  end
  return after
end
