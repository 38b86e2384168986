package dialect

import (
	"sort"
	"strings"
	"time"
)

// shopify reads "used/capacity" leaky-bucket headers
// (X-Shopify-Shop-Api-Call-Limit and the like), which leak 2 calls a
// second on the lowest plan: the bucket is empty again after used/2 s.
func (p *parser) shopify(*Mapping) (string, *quota, bool) {
	names := make([]string, 0, 1)
	for name := range p.h {
		if strings.HasSuffix(name, "-Api-Call-Limit") {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return FamilyShopify, nil, false
	}
	sort.Strings(names)
	used, capacity, ok := strings.Cut(strings.TrimSpace(p.h.Get(names[0])), "/")
	u, okU := count(used)
	c, okC := count(capacity)
	if !ok || !okU || !okC || c == 0 || u > c {
		return FamilyShopify, nil, true
	}
	const leakPerSecond = 2
	return FamilyShopify, &quota{
		limit:     c,
		remaining: c - u,
		reset:     time.Duration((u+leakPerSecond-1)/leakPerSecond) * time.Second,
		window:    time.Duration((c+leakPerSecond-1)/leakPerSecond) * time.Second,
	}, true
}
