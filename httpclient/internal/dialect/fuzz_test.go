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
// and bodies to the parser. Whatever comes in, it must not panic, every
// quota of its observation must be storable (no negative, no count above
// MaxCount, nothing beyond MaxHorizon, slack within the reset, a unit a
// backend can name), Normalize must accept it, and it must be
// deterministic.
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
	// The second round: units, dates in other zones, renames, bodies.
	f.Add(200, "Date: Tue, 01 Dec 2026 20:24:32 UTC\nX-RateLimit-Limit: 10\nX-RateLimit-Remaining: 9\nX-RateLimit-Reset: Tue, 01 Dec 2026 20:25:02 UTC", "")
	f.Add(200, "X-RateLimit-Reset: Mon Nov 23 2026 13:00:40 GMT+0100 (Central European Standard Time)\nX-RateLimit-Remaining: 1", "")
	f.Add(200, "X-Rate-Limit-Limit: 10.00\nX-Rate-Limit-Duration: 1\nRateLimit-Limit: 10\nRateLimit-Remaining: 9\nRateLimit-Reset: 1", "")
	f.Add(200, "RateLimit-Policy: \"peruser\";q=65535;qu=\"content-bytes\";w=10\nRateLimit-Policy: \"c\";q=5;qu=\"concurrent-requests\"\nRateLimit: \"peruser\";a=20;w=5, \"c\";r=1", "")
	f.Add(200, "RateLimit: \"default\";r=5;t=18446744074\nBeta-RateLimit: \"x\";r=1;t=1", "")
	f.Add(200, "x-ratelimit-limit-tokens: 150000\nx-ratelimit-remaining-tokens: 149984\nx-ratelimit-reset-tokens: 16m17.764s\nx-ratelimit-limit-tokens_usage_based: 40000", "")
	f.Add(429, "x-rate-limit-reset-tokens: 55\npolicy-id: DeploymentRatelimit-Token\nx-should-retry: false", "")
	f.Add(200, "anthropic-ratelimit-input-tokens-limit: 80000\nanthropic-ratelimit-input-tokens-remaining: 400\nanthropic-ratelimit-input-tokens-reset: 2026-11-23T12:00:59Z", "")
	f.Add(200, "x-ratelimitbysize-limit-minute: 500000\nx-ratelimitbysize-remaining-minute: 467993\nratelimitbysize-limit: 500000\nratelimitbysize-remaining: 467993\nratelimitbysize-reset: 40", "")
	f.Add(429, "", `{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"}]}}`)
	f.Add(200, "X-Shopify-Shop-Api-Call-Limit: 0/1099511627776\nStripe-Should-Retry: true", "")
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
		if o.RetryAfter < 0 || o.RetryAfter > srl.MaxHorizon {
			t.Fatalf("retry-after %v outside [0, %v]", o.RetryAfter, srl.MaxHorizon)
		}
		checkStorable(t, srl.QuotaObservation{Unit: o.Unit, Limit: o.Limit, Remaining: o.Remaining, Reset: o.Reset, Window: o.Window, ResetSlack: o.ResetSlack})
		units := map[string]bool{}
		for _, q := range o.Quotas {
			if q.Unit == "" || units[q.Unit] {
				t.Fatalf("quotas %+v: a unit twice, or requests among the others", o.Quotas)
			}
			units[q.Unit] = true
			checkStorable(t, q)
		}
		if _, err := o.Normalize(); err != nil {
			t.Fatalf("Normalize rejects %+v: %v", o, err)
		}
		if got.Found == o.Bare {
			t.Fatalf("Found %v and Bare %v", got.Found, o.Bare)
		}
		if again := Parse(in, m); !reflect.DeepEqual(again, got) {
			t.Fatalf("not deterministic: %+v then %+v", got, again)
		}
	})
}

// checkStorable fails on a quota a backend could not keep, or one that
// would make the fleet wait forever or by a negative time.
func checkStorable(t *testing.T, q srl.QuotaObservation) {
	t.Helper()
	if q.Limit < 0 || q.Remaining < 0 || q.Reset < 0 || q.Window < 0 || q.ResetSlack < 0 {
		t.Fatalf("negative value: %+v", q)
	}
	if q.Limit > srl.MaxCount || q.Remaining > srl.MaxCount {
		t.Fatalf("count above MaxCount: %+v", q)
	}
	if q.Reset > srl.MaxHorizon || q.Window > srl.MaxHorizon {
		t.Fatalf("beyond the horizon: %+v", q)
	}
	if q.ResetSlack > q.Reset {
		t.Fatalf("slack beyond the reset: %+v", q)
	}
	if q.Unit != "" {
		if err := srl.ValidUnit(q.Unit); err != nil || q.Unit == srl.UnitRequests {
			t.Fatalf("unit %q: %v", q.Unit, err)
		}
	}
}
