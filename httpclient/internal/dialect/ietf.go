package dialect

import (
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// ietf reads the RateLimit and RateLimit-Policy fields of the IETF drafts
// -07 (a dictionary) and -08 to -11 (lists of named policies), under their
// standard and Atlassian "Beta-" names. The separate fields of -06 and
// before are read by xratelimit.
func (p *parser) ietf() {
	for _, prefix := range []string{"", "Beta-"} {
		field, present, okF := p.list(prefix + "Ratelimit")
		if !present {
			continue
		}
		policies, _, okP := p.list(prefix + "Ratelimit-Policy")
		if !okF || !okP {
			p.offer(reading{family: FamilyIETF8}, false)
			continue
		}
		if items, ok := parseSF(field, false); ok && (hasParam(items, "r") || hasParam(items, "a")) {
			quotas, ok := p.ietf8(items, policies)
			p.offer(reading{family: FamilyIETF8, quotas: quotas}, ok)
		} else if items, ok := parseSF(field, true); ok {
			q, ok := p.ietf7(items, policies)
			p.offer(reading{family: FamilyIETF7, quotas: []quota{q}}, ok)
		} else {
			p.offer(reading{family: FamilyIETF8}, false)
		}
	}
}

func hasParam(items []sfItem, key string) bool {
	for _, it := range items {
		if _, ok := it.param(key); ok {
			return true
		}
	}
	return false
}

// policyName accepts a String or, leniently, a Token (the -10 draft's own
// example and Cloudflare-style servers send tokens).
func policyName(v sfValue) string {
	if v.kind == sfString || v.kind == sfToken {
		return v.str
	}
	return ""
}

// policy is what RateLimit-Policy says about one named policy.
type policy struct {
	limit    int
	hasLimit bool
	window   time.Duration
	unit     string // "" for requests
	// ignored marks a policy whose quota is no count of anything a
	// request spends: concurrent requests, or a unit with a name no
	// backend can store.
	ignored bool
}

// policies reads a RateLimit-Policy field by name. Its details are
// informative, so a value that cannot be used is left out; but the field
// says what each quota counts, so one that does not parse makes the whole
// family untrustworthy.
func policies(field string) (map[string]policy, bool) {
	if field == "" {
		return nil, true
	}
	items, ok := parseSF(field, false)
	if !ok {
		return nil, false
	}
	byName := make(map[string]policy, len(items))
	for _, it := range items {
		name := policyName(it.val)
		if _, seen := byName[name]; seen {
			continue
		}
		var pol policy
		if q, ok := it.param("q"); ok {
			pol.limit, pol.hasLimit = intValue(q)
		}
		if w, ok := it.param("w"); ok {
			pol.window, _ = sfSeconds(w)
		}
		if qu, ok := it.param("qu"); ok {
			switch unit := policyName(qu); {
			case unit == srl.UnitRequests:
			case unit == "concurrent-requests" || srl.ValidUnit(unit) != nil:
				pol.ignored = true
			default:
				pol.unit = unit
			}
		}
		byName[name] = pol
	}
	return byName, true
}

// ietf8 reads the -08 to -11 lists. Each RateLimit item names a policy;
// its available quota is r (renamed a in -11's successors) and its
// effective window t (or w). For each unit the binding policy is kept:
// the least quota available, the longest window on a tie. A unit that is
// not requests ("content-bytes") is its own quota, never compared with
// the request quota.
func (p *parser) ietf8(items []sfItem, policyField string) ([]quota, bool) {
	pols, ok := policies(policyField)
	if !ok {
		return nil, false
	}
	var best []quota
	for _, it := range items {
		r, hasR, ok := eitherParam(it, "r", "a", intValue)
		if !ok {
			return nil, false
		}
		if !hasR {
			// -10's "quota;t=1" names no available quota.
			continue
		}
		t, hasT, ok := eitherParam(it, "t", "w", sfSeconds)
		if !ok {
			return nil, false
		}
		pol := pols[policyName(it.val)]
		if pol.ignored {
			continue
		}
		q := quota{
			unit:      pol.unit,
			limit:     pol.limit,
			remaining: r,
			reset:     t,
			window:    pol.window,
			hasLimit:  pol.hasLimit, hasRemaining: true, hasReset: hasT,
		}
		if q.reset == 0 && q.window > 0 {
			// Without t the window bounds the wait for more quota.
			q.reset, q.hasReset = q.window, true
		}
		switch i := unitIndex(best, q.unit); {
		case i < 0:
			best = append(best, q)
		case q.remaining < best[i].remaining || q.remaining == best[i].remaining && q.reset > best[i].reset:
			best[i] = q
		}
	}
	return best, true
}

func unitIndex(qs []quota, unit string) int {
	for i, q := range qs {
		if q.unit == unit {
			return i
		}
	}
	return -1
}

// eitherParam reads the parameter a draft renamed: under either name, not
// under both with different values.
func eitherParam[T comparable](it sfItem, name, rename string, read func(sfValue) (T, bool)) (v T, present, ok bool) {
	a, hasA := it.param(name)
	b, hasB := it.param(rename)
	if !hasA && !hasB {
		return v, false, true
	}
	if !hasA {
		a = b
	}
	if v, ok = read(a); !ok {
		return v, true, false
	}
	if hasA && hasB {
		w, okB := read(b)
		return v, true, okB && w == v
	}
	return v, true, true
}

// ietf7 reads "limit=100, remaining=50, reset=5" and a "100;w=10" policy.
func (p *parser) ietf7(items []sfItem, policyField string) (quota, bool) {
	var q quota
	for _, it := range items {
		var ok bool
		switch it.name {
		case "limit":
			q.limit, ok = intValue(it.val)
			q.hasLimit = true
		case "remaining":
			q.remaining, ok = intValue(it.val)
			q.hasRemaining = true
		case "reset":
			q.reset, ok = sfSeconds(it.val)
			q.hasReset = true
		default:
			continue
		}
		if !ok {
			return quota{}, false
		}
	}
	if !q.hasLimit && !q.hasRemaining && !q.hasReset {
		return quota{}, false
	}
	q.window = policyWindow(policyField)
	return q, true
}

// policyWindow reads w from the first policy of a -04 to -07
// RateLimit-Policy ("100;w=10"), informative only: 0 when unusable.
func policyWindow(field string) time.Duration {
	pols, ok := parseSF(field, false)
	if !ok {
		return 0
	}
	w, ok := pols[0].param("w")
	if !ok {
		return 0
	}
	d, _ := sfSeconds(w)
	return d
}

// intValue reads a count: a non-negative Integer up to MaxCount.
func intValue(v sfValue) (int, bool) {
	if v.kind != sfNumber || !v.integer || v.num < 0 || v.num > srl.MaxCount {
		return 0, false
	}
	return int(v.num), true
}

// sfSeconds reads whole seconds, up to MaxHorizon: bounded before the
// multiplication, which would wrap (t=18446744074 made 290ms).
func sfSeconds(v sfValue) (time.Duration, bool) {
	if v.kind != sfNumber || !v.integer || v.num < 0 || v.num > srl.MaxHorizon.Seconds() {
		return 0, false
	}
	return time.Duration(v.num) * time.Second, true
}
