package dialect

import (
	"strings"
	"time"
)

// shopify reads "used/capacity" leaky-bucket headers
// (X-Shopify-Shop-Api-Call-Limit and the like), which leak 2 calls a
// second on the lowest plan: the bucket is empty again after used/2 s.
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
	if !ok || !okU || !okC || c == 0 || u > c {
		p.offer(reading{family: FamilyShopify}, false)
		return
	}
	const leakPerSecond = 2
	p.offer(reading{family: FamilyShopify, quotas: []quota{{
		limit:     c,
		remaining: c - u,
		reset:     time.Duration((u+leakPerSecond-1)/leakPerSecond) * time.Second,
		window:    time.Duration((c+leakPerSecond-1)/leakPerSecond) * time.Second,
		hasLimit:  true, hasRemaining: true, hasReset: true,
	}}}, true)
}
