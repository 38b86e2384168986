package metrics

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// every event kind that labels a series with its key.
func feedKey(c *Collector, key string) {
	c.Event(srl.Event{Kind: srl.EventSent, Key: key})
	c.Event(srl.Event{Kind: srl.EventResponse, Key: key, Status: 200})
	c.Event(srl.Event{Kind: srl.EventWaited, Key: key, Wait: 100 * time.Millisecond})
	c.Event(srl.Event{Kind: srl.EventDecided, Key: key, Allowed: true})
	c.Event(srl.Event{Kind: srl.EventBlocked, Key: key})
	c.Event(srl.Event{Kind: srl.EventQuotaSeen, Key: key, Quota: srl.QuotaStatus{Known: true, Limit: 10, Remaining: 5, ResetAfter: time.Second}})
}

// One key that is not valid UTF-8 (or that holds bytes a label should not)
// must not take the registry down: it gets a label in the form Redis
// stores it under, and every other series is still served.
func TestOddKeysGetValidLabels(t *testing.T) {
	tests := []struct{ name, key string }{
		{"invalid UTF-8", "api.example.com|\xff\xfe"},
		{"lone continuation byte", "\x80"},
		{"control bytes", "api\x00.example.com\n"},
		{"too long", strings.Repeat("k", redislimit.MaxPlainKeyLen+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New()
			feedKey(c, "api.github.com")
			feedKey(c, tc.key)
			c.Event(srl.Event{Kind: srl.EventHeaderMalformed, Key: tc.key, Dialect: "bad\xffdialect"})
			c.Event(srl.Event{Kind: srl.EventBackendError, ErrorKind: "odd\xffkind"})

			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(c)
			families, err := reg.Gather()
			if err != nil {
				t.Fatalf("gather: %v", err)
			}
			want := redislimit.RedisKey("", tc.key)
			want = want[1 : len(want)-1] // the stored name, between the braces
			labels := map[string]bool{}
			for _, f := range families {
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						if !utf8.ValidString(l.GetValue()) {
							t.Fatalf("%s has label %s=%q", f.GetName(), l.GetName(), l.GetValue())
						}
						if l.GetName() == "key" {
							labels[l.GetValue()] = true
						}
					}
				}
			}
			if len(labels) != 2 || !labels["api.github.com"] || !labels[want] {
				t.Fatalf("key labels %v, want api.github.com and %q", labels, want)
			}
			if n := testutil.CollectAndCount(c, "smartratelimit_requests_total"); n != 6 {
				t.Fatalf("%d request series, want 6 (sent, waited and 2xx for each key)", n)
			}
			if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
				t.Fatalf("lint: %v %+v", err, problems)
			}

			// And over HTTP, as Prometheus scrapes it.
			srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			defer srv.Close()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/metrics answered %s", resp.Status)
			}

			// The snapshot names the key the same way.
			var keys []string
			for _, k := range c.Snapshot().Keys {
				keys = append(keys, k.Key)
			}
			if len(keys) != 2 || keys[0] != want && keys[1] != want {
				t.Fatalf("snapshot keys %q, want %q among them", keys, want)
			}
		})
	}
}

// Keys that need no hashing keep their own name, and WithKeys matches keys
// as the code names them, whatever label they get.
func TestLabelForm(t *testing.T) {
	for _, key := range []string{"api.github.com", "api.github.com|4f1c0e", "bücher.example", "moc.elgoog\u202e.example", ""} {
		if got := labelFor(key); got != key {
			t.Errorf("labelFor(%q) = %q, want the key itself", key, got)
		}
	}
	odd := "tenant\xff"
	c := New(WithKeys(odd))
	c.Event(srl.Event{Kind: srl.EventSent, Key: odd})
	c.Event(srl.Event{Kind: srl.EventSent, Key: "not.listed"})
	s := c.Snapshot()
	if len(s.Keys) != 2 || s.Keys[0].Key != labelFor(odd) || s.Keys[1].Key != OtherKey {
		t.Fatalf("allow-listed odd key: %+v", s.Keys)
	}
}

// The label is the stored name, by the same rule as redislimit.RedisKey
// (this package keeps its own copy of the rule; this holds them together).
func TestLabelsAreTheRedisNames(t *testing.T) {
	for _, key := range []string{
		"api.github.com", "", "a b", "{braced}", "open{", "#hash", "mid#hash", "del\x7f", "tab\t", "\xff",
		strings.Repeat("k", redislimit.MaxPlainKeyLen), strings.Repeat("k", redislimit.MaxPlainKeyLen+1), "bücher.example",
	} {
		rk := redislimit.RedisKey("", key)
		if want := rk[1 : len(rk)-1]; labelFor(key) != want {
			t.Errorf("labelFor(%q) = %q, Redis stores it as %q", key, labelFor(key), want)
		}
	}
}

// A million distinct keys cost the collector at most its bound of series.
func TestAMillionKeysStayBounded(t *testing.T) {
	c := New()
	for i := 0; i < 1_000_000; i++ {
		c.Event(srl.Event{Kind: srl.EventSent, Key: "k" + strconv.Itoa(i)})
	}
	if n := len(c.keys); n > DefaultMaxKeys+1 {
		t.Fatalf("%d keys tracked, bound %d and %q", n, DefaultMaxKeys, OtherKey)
	}
}
