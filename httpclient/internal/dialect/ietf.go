package dialect

import (
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// ietf reads the RateLimit and RateLimit-Policy fields of the IETF drafts
// -07 (a dictionary) and -08 onward (lists of named policies), under
// their standard and Atlassian "Beta-" names.
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
		if items, ok := parseSF(field, false); ok && hasParam(items, "r") {
			q, ok := p.ietf8(items, policies)
			p.offer(reading{family: FamilyIETF8, quotas: []quota{q}}, ok)
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

// policyName accepts a String or, leniently, a Token.
func policyName(v sfValue) string {
	if v.kind == sfString || v.kind == sfToken {
		return v.str
	}
	return ""
}

// ietf8 picks the binding policy: the smallest available quota r, the
// longest effective window t on a tie.
func (p *parser) ietf8(items []sfItem, policyField string) (quota, bool) {
	var policies []sfItem
	if policyField != "" {
		var ok bool
		if policies, ok = parseSF(policyField, false); !ok {
			policies = nil
		}
	}
	var best quota
	var bestName string
	found := false
	for _, it := range items {
		r, ok := it.param("r")
		if !ok {
			continue
		}
		rem, okR := intValue(r)
		if !okR {
			return quota{}, false
		}
		q := quota{remaining: rem, hasRemaining: true}
		if t, ok := it.param("t"); ok {
			n, okT := intValue(t)
			if !okT || time.Duration(n)*time.Second > srl.MaxHorizon {
				return quota{}, false
			}
			q.reset, q.hasReset = time.Duration(n)*time.Second, true
		}
		if !found || q.remaining < best.remaining || q.remaining == best.remaining && q.reset > best.reset {
			best, bestName, found = q, policyName(it.val), true
		}
	}
	if !found {
		return quota{}, false
	}
	for _, pol := range policies {
		if policyName(pol.val) != bestName {
			continue
		}
		if q, ok := pol.param("q"); ok {
			if n, ok := intValue(q); ok {
				best.limit, best.hasLimit = n, true
			}
		}
		if w, ok := pol.param("w"); ok {
			if n, ok := intValue(w); ok && time.Duration(n)*time.Second <= srl.MaxHorizon {
				best.window = time.Duration(n) * time.Second
			}
		}
	}
	if best.reset == 0 && best.window > 0 {
		// Without t the window bounds the wait for more quota.
		best.reset, best.hasReset = best.window, true
	}
	return best, true
}

// ietf7 reads "limit=100, remaining=50, reset=5" and a "100;w=10" policy.
func (p *parser) ietf7(items []sfItem, policyField string) (quota, bool) {
	var q quota
	for _, it := range items {
		n, ok := intValue(it.val)
		switch it.name {
		case "limit":
			q.limit, q.hasLimit = n, true
		case "remaining":
			q.remaining, q.hasRemaining = n, true
		case "reset":
			q.reset, q.hasReset = time.Duration(n)*time.Second, true
		default:
			continue
		}
		if !ok {
			return quota{}, false
		}
	}
	if !q.hasLimit && !q.hasRemaining && !q.hasReset || q.reset > srl.MaxHorizon {
		return quota{}, false
	}
	if pols, ok := parseSF(policyField, false); ok {
		if w, ok := pols[0].param("w"); ok {
			if n, ok := intValue(w); ok && time.Duration(n)*time.Second <= srl.MaxHorizon {
				q.window = time.Duration(n) * time.Second
			}
		}
	}
	return q, true
}

func intValue(v sfValue) (int, bool) {
	if v.kind != sfNumber || !v.integer || v.num < 0 || v.num > srl.MaxCount {
		return 0, false
	}
	return int(v.num), true
}
