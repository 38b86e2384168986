package dialect

import (
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// shopify reads "used/capacity" leaky-bucket headers
// (X-Shopify-Shop-Api-Call-Limit and the like): the bucket is empty
// again once the used calls have leaked.
// With several such headers the first by name is read, so that the
// answer does not depend on map order.
func (p *parser) shopify() {
	name := ""
	for n := range p.h {
		if strings.HasSuffix(n, "-Api-Call-Limit") && (name == "" || n < name) {
			name = n
		}
	}
	if name == "" {
		return
	}
	v, ok := p.get(name)
	if !ok {
		p.offer(reading{family: FamilyShopify}, false)
		return
	}
	used, capacity, ok := strings.Cut(v, "/")
	u, okU := count(used)
	c, okC := count(capacity)
	// A bucket that would take beyond MaxHorizon to drain is no Shopify
	// plan (they hold 40 to 400 calls).
	if !ok || !okU || !okC || c == 0 || u > c || c > maxDrained {
		p.offer(reading{family: FamilyShopify}, false)
		return
	}
	p.offer(reading{family: FamilyShopify, quotas: []quota{{
		limit:     c,
		remaining: c - u,
		reset:     drain(u),
		window:    drain(c),
		hasLimit:  true, hasRemaining: true, hasReset: true,
	}}}, true)
}

// Shopify's lowest plan leaks 2 calls a second.
const (
	leakPerSecond = 2
	maxDrained    = int(srl.MaxHorizon/time.Second) * leakPerSecond
)

// drain is how long the bucket takes to leak calls.
func drain(calls int) time.Duration {
	return time.Duration((calls+leakPerSecond-1)/leakPerSecond) * time.Second
}
