package dialect

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// FuzzParse feeds arbitrary statuses, header blocks ("Name: value" lines)
// and bodies to the parser. Whatever comes in, it must not panic, its
// observation must be storable (no negative, nothing beyond MaxHorizon,
// Normalize accepts it), and it must be deterministic.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 2m ./httpclient/internal/dialect/
func FuzzParse(f *testing.F) {
	f.Add(200, "Date: Mon, 23 Nov 2026 12:00:00 GMT\nx-ratelimit-limit-requests: 500\nx-ratelimit-remaining-requests: 499\nx-ratelimit-reset-requests: 6m0s", "")
	f.Add(429, "retry-after-ms: 12\nx-ratelimit-reset-requests: 12ms", "")
	f.Add(429, "Retry-After: 2.0\nX-Shopify-Shop-Api-Call-Limit: 32/40", "")
	f.Add(200, "X-RateLimit-Reset: 1470173023.123\nX-RateLimit-Reset-After: 64.57\nX-RateLimit-Bucket: abcd", "")
	f.Add(200, "anthropic-ratelimit-requests-reset: 2026-11-23T12:00:59Z\nanthropic-ratelimit-requests-remaining: 3", "")
	f.Add(200, "Date: Mon, 23 Nov 2026 12:00:00 GMT\nX-RateLimit-Reset: 1795435000\nX-RateLimit-Remaining: 0", "")
	f.Add(200, "x-ratelimit-limit-requests: -1\nx-ratelimit-remaining-requests: -1\nx-ratelimit-reset-requests: 0", "")
	f.Add(200, "X-Ratelimit-Remaining: 98.0\nX-Ratelimit-Used: 2\nX-Ratelimit-Reset: 436", "")
	f.Add(200, "RateLimit-Policy: \"burst\";q=100;w=60\nRateLimit-Policy: \"daily\";q=1000;w=86400\nRateLimit: \"burst\";r=50;t=30\nRateLimit: \"daily\";r=12;t=36000", "")
	f.Add(200, "ratelimit: limit=100, remaining=50, reset=5\nratelimit-policy: 100;w=10", "")
	f.Add(403, "", `{"message":"You have exceeded a secondary rate limit."}`)
	f.Add(429, "", `{"retry_after": 64.57}`)
	f.Add(503, "Date: Mon, 23 Nov 2026 12:00:00 GMT\nRetry-After: Mon, 23 Nov 2026 12:00:45 GMT", "")
	f.Add(200, "X-RateLimit-Reset: 2026-11-23T12:02Z\nX-RateLimit-Remaining: 0", "")
	f.Add(200, "X-RateLimit-Limit: 100, 100;window=60\nX-RateLimit-Remaining: 1e308\nX-RateLimit-Reset: NaN", "")
	f.Add(429, "Retry-After: -5\nRetry-After-Ms: 1e400", "")
	f.Fuzz(func(t *testing.T, status int, block, body string) {
		h := http.Header{}
		for _, line := range strings.Split(block, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) != "" {
				h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
		}
		in := Input{Header: h, StatusCode: status, Body: []byte(body), Received: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
		m := &Mapping{Limit: "X-My-Limit", Remaining: "X-My-Remaining", Reset: "X-My-Reset", RetryAfter: "X-My-Retry"}
		got := Parse(in, m)
		o := got.Observation
		if o.Limit < 0 || o.Remaining < 0 || o.Reset < 0 || o.RetryAfter < 0 || o.Window < 0 {
			t.Fatalf("negative value: %+v", o)
		}
		if o.Reset > srl.MaxHorizon || o.RetryAfter > srl.MaxHorizon || o.Window > srl.MaxHorizon {
			t.Fatalf("beyond the horizon: %+v", o)
		}
		if _, err := o.Normalize(); err != nil {
			t.Fatalf("Normalize rejects %+v: %v", o, err)
		}
		if again := Parse(in, m); !reflect.DeepEqual(again, got) {
			t.Fatalf("not deterministic: %+v then %+v", got, again)
		}
	})
}
