package metrics

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	srl "github.com/smartratelimit/smartratelimit"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// feed sends a fixed day in the life of two APIs.
func feed(c *Collector) {
	gh, ai := "api.github.com", "api.openai.com"
	for i := 0; i < 3; i++ {
		c.Event(srl.Event{Kind: srl.EventSent, Key: gh})
		c.Event(srl.Event{Kind: srl.EventResponse, Key: gh, Status: 200})
	}
	c.Event(srl.Event{Kind: srl.EventWaited, Key: gh, Wait: 300 * time.Millisecond})
	c.Event(srl.Event{Kind: srl.EventWaited, Key: gh, Wait: 2 * time.Second})
	c.Event(srl.Event{Kind: srl.EventQuotaSeen, Key: gh, Quota: srl.QuotaStatus{Known: true, Limit: 5000, Remaining: 1250, ResetAfter: 30 * time.Minute}})
	gpt := ai + "|gpt-4.1"
	c.Event(srl.Event{Kind: srl.EventSent, Key: gpt, Costs: []srl.Cost{{Unit: srl.UnitRequests, N: 1}, {Unit: srl.UnitTokens, N: 1200}}})
	c.Event(srl.Event{Kind: srl.EventResponse, Key: gpt, Status: 200})
	c.Event(srl.Event{Kind: srl.EventQuotaSeen, Key: gpt, Quota: srl.QuotaStatus{Known: true, Unit: srl.UnitTokens, Limit: 30000, Remaining: 27000, ResetAfter: 6 * time.Second}})
	c.Event(srl.Event{Kind: srl.EventQuotaSeen, Key: gpt, Quota: srl.QuotaStatus{Known: true, Limit: 500, Remaining: 499, ResetAfter: 120 * time.Millisecond}})
	c.Event(srl.Event{Kind: srl.EventSent, Key: gpt, Costs: []srl.Cost{{Unit: srl.UnitRequests, N: 1}, {Unit: srl.UnitTokens, N: 800}}})
	c.Event(srl.Event{Kind: srl.EventTransportError, Key: gpt, Err: errors.New("dial tcp: connection refused")})
	c.Event(srl.Event{Kind: srl.EventRefunded, Key: gpt, Costs: []srl.Cost{{Unit: srl.UnitRequests, N: 1}, {Unit: srl.UnitTokens, N: 800}}})
	c.Event(srl.Event{Kind: srl.EventSent, Key: ai})
	c.Event(srl.Event{Kind: srl.EventResponse, Key: ai, Status: 429})
	c.Event(srl.Event{Kind: srl.EventBlocked, Key: ai, Wait: 20 * time.Second})
	c.Event(srl.Event{Kind: srl.EventRetried, Key: ai, Attempt: 1})
	c.Event(srl.Event{Kind: srl.EventSent, Key: ai})
	c.Event(srl.Event{Kind: srl.EventResponse, Key: ai, Status: 503})
	c.Event(srl.Event{Kind: srl.EventTransportError, Key: ai, Err: errors.New("connection reset")})
	c.Event(srl.Event{Kind: srl.EventLimited, Key: ai, Cause: srl.CauseBlocked, Wait: 19 * time.Second})
	c.Event(srl.Event{Kind: srl.EventDecided, Key: ai, Allowed: true})
	c.Event(srl.Event{Kind: srl.EventDecided, Key: ai, Allowed: false, Degraded: true})
	c.Event(srl.Event{Kind: srl.EventHeaderMalformed, Key: ai, Dialect: "openai"})
	c.Event(srl.Event{Kind: srl.EventBackendError, ErrorKind: "unavailable"})
	c.Event(srl.Event{Kind: srl.EventDegradedChange, Degraded: true})
}

func TestPrometheusOutput(t *testing.T) {
	c := New()
	feed(c)
	want := `
# HELP smartratelimit_degraded 1 while the limiter decides without its shared backend (Redis unreachable), else 0.
# TYPE smartratelimit_degraded gauge
smartratelimit_degraded 1
# HELP smartratelimit_requests_total HTTP requests by budget key and outcome: sent, waited (for budget), limited (refused without sending), retried, the response class (2xx, 3xx, 4xx, 429, 5xx) or transport_error.
# TYPE smartratelimit_requests_total counter
smartratelimit_requests_total{key="api.github.com",outcome="2xx"} 3
smartratelimit_requests_total{key="api.github.com",outcome="sent"} 3
smartratelimit_requests_total{key="api.github.com",outcome="waited"} 2
smartratelimit_requests_total{key="api.openai.com",outcome="429"} 1
smartratelimit_requests_total{key="api.openai.com",outcome="5xx"} 1
smartratelimit_requests_total{key="api.openai.com",outcome="limited"} 1
smartratelimit_requests_total{key="api.openai.com",outcome="retried"} 1
smartratelimit_requests_total{key="api.openai.com",outcome="sent"} 2
smartratelimit_requests_total{key="api.openai.com",outcome="transport_error"} 1
smartratelimit_requests_total{key="api.openai.com|gpt-4.1",outcome="2xx"} 1
smartratelimit_requests_total{key="api.openai.com|gpt-4.1",outcome="sent"} 2
smartratelimit_requests_total{key="api.openai.com|gpt-4.1",outcome="transport_error"} 1
# HELP smartratelimit_refunded_total What requests that never reached the server gave back, by unit.
# TYPE smartratelimit_refunded_total counter
smartratelimit_refunded_total{key="api.openai.com|gpt-4.1",unit="requests"} 1
smartratelimit_refunded_total{key="api.openai.com|gpt-4.1",unit="tokens"} 800
# HELP smartratelimit_server_limit The server's quota per window in one unit (requests, tokens, input_tokens, output_tokens), as its last response said.
# TYPE smartratelimit_server_limit gauge
smartratelimit_server_limit{key="api.github.com",unit="requests"} 5000
smartratelimit_server_limit{key="api.openai.com|gpt-4.1",unit="requests"} 500
smartratelimit_server_limit{key="api.openai.com|gpt-4.1",unit="tokens"} 30000
# HELP smartratelimit_server_remaining What was left of the server's quota in one unit, as its last response said.
# TYPE smartratelimit_server_remaining gauge
smartratelimit_server_remaining{key="api.github.com",unit="requests"} 1250
smartratelimit_server_remaining{key="api.openai.com|gpt-4.1",unit="requests"} 499
smartratelimit_server_remaining{key="api.openai.com|gpt-4.1",unit="tokens"} 27000
# HELP smartratelimit_spent_total What sent requests spent from the budget, by unit: requests, and the tokens a cost function estimated.
# TYPE smartratelimit_spent_total counter
smartratelimit_spent_total{key="api.openai.com|gpt-4.1",unit="requests"} 2
smartratelimit_spent_total{key="api.openai.com|gpt-4.1",unit="tokens"} 2000
# HELP smartratelimit_utilization_ratio Share of the server's quota in one unit spent (0 to 1), as its last response said.
# TYPE smartratelimit_utilization_ratio gauge
smartratelimit_utilization_ratio{key="api.github.com",unit="requests"} 0.75
smartratelimit_utilization_ratio{key="api.openai.com|gpt-4.1",unit="requests"} 0.002
smartratelimit_utilization_ratio{key="api.openai.com|gpt-4.1",unit="tokens"} 0.1
# HELP smartratelimit_wait_seconds Time requests waited for their budget before being sent.
# TYPE smartratelimit_wait_seconds histogram
smartratelimit_wait_seconds_bucket{key="api.github.com",le="0.005"} 0
smartratelimit_wait_seconds_bucket{key="api.github.com",le="0.01"} 0
smartratelimit_wait_seconds_bucket{key="api.github.com",le="0.025"} 0
smartratelimit_wait_seconds_bucket{key="api.github.com",le="0.05"} 0
smartratelimit_wait_seconds_bucket{key="api.github.com",le="0.1"} 0
smartratelimit_wait_seconds_bucket{key="api.github.com",le="0.25"} 0
smartratelimit_wait_seconds_bucket{key="api.github.com",le="0.5"} 1
smartratelimit_wait_seconds_bucket{key="api.github.com",le="1"} 1
smartratelimit_wait_seconds_bucket{key="api.github.com",le="2.5"} 2
smartratelimit_wait_seconds_bucket{key="api.github.com",le="5"} 2
smartratelimit_wait_seconds_bucket{key="api.github.com",le="10"} 2
smartratelimit_wait_seconds_bucket{key="api.github.com",le="30"} 2
smartratelimit_wait_seconds_bucket{key="api.github.com",le="60"} 2
smartratelimit_wait_seconds_bucket{key="api.github.com",le="+Inf"} 2
smartratelimit_wait_seconds_sum{key="api.github.com"} 2.3
smartratelimit_wait_seconds_count{key="api.github.com"} 2
`
	names := []string{"smartratelimit_degraded", "smartratelimit_requests_total", "smartratelimit_server_limit",
		"smartratelimit_server_remaining", "smartratelimit_utilization_ratio", "smartratelimit_wait_seconds",
		"smartratelimit_spent_total", "smartratelimit_refunded_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "smartratelimit_decisions_total", "smartratelimit_server_blocks_total",
		"smartratelimit_backend_errors_total", "smartratelimit_header_parse_failures_total", "smartratelimit_server_reset_seconds"); n != 8 {
		t.Fatalf("%d series in the other families, want 8", n)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("a pedantic registry refuses the collector: %v", err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
}

func TestSnapshotGolden(t *testing.T) {
	c := New()
	feed(c)
	got, err := json.MarshalIndent(c.Snapshot(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/snapshot.golden.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("snapshot differs from %s:\n%s", golden, got)
	}
	// Stable: the same state marshals the same way every time.
	for i := 0; i < 20; i++ {
		again, _ := json.MarshalIndent(c.Snapshot(), "", "  ")
		if string(append(again, '\n')) != string(got) {
			t.Fatal("the snapshot's JSON is not stable")
		}
	}
}

func TestLabelsAreBounded(t *testing.T) {
	c := New(WithMaxKeys(2))
	for _, k := range []string{"a", "b", "c", "d", "a"} {
		c.Event(srl.Event{Kind: srl.EventSent, Key: k})
	}
	keys := map[string]uint64{}
	for _, k := range c.Snapshot().Keys {
		keys[k.Key] = k.Requests[OutcomeSent]
	}
	if len(keys) != 3 || keys["a"] != 2 || keys["b"] != 1 || keys[OtherKey] != 2 {
		t.Fatalf("labels %v, want a, b and other", keys)
	}

	allow := New(WithKeys("api.github.com"))
	allow.Event(srl.Event{Kind: srl.EventSent, Key: "api.github.com"})
	allow.Event(srl.Event{Kind: srl.EventSent, Key: "api.github.com|4f1c0e"})
	if s := allow.Snapshot(); len(s.Keys) != 2 || s.Keys[0].Key != "api.github.com" || s.Keys[1].Key != OtherKey {
		t.Fatalf("allow-list labels: %+v", s.Keys)
	}
}

func TestDegradedFollowsTransitions(t *testing.T) {
	c := New()
	for _, on := range []bool{true, false, true} {
		c.Event(srl.Event{Kind: srl.EventDegradedChange, Degraded: on})
		if got := testutil.ToFloat64(gauge(c)); got != boolFloat(on) {
			t.Fatalf("degraded gauge %v after a transition to %v", got, on)
		}
	}
}

// gauge isolates the degraded gauge for testutil.ToFloat64.
func gauge(c *Collector) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		all := make(chan prometheus.Metric, 64)
		c.Collect(all)
		close(all)
		for m := range all {
			if m.Desc() == c.descs.degraded {
				ch <- m
			}
		}
	})
}
