package metrics_test

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/metrics"
)

// A Collector turns the events of a client or a limiter into figures. In
// production it is fed by httpclient.WithObserver(m) or
// redislimit.WithObserver(m); here the events are sent by hand, and the
// JSON snapshot (what m.SnapshotHandler serves) is printed.
func Example() {
	m := metrics.New()
	key := "api.github.com"
	m.Event(srl.Event{Kind: srl.EventSent, Key: key})
	m.Event(srl.Event{Kind: srl.EventResponse, Key: key, Status: 200})
	m.Event(srl.Event{Kind: srl.EventWaited, Key: key, Wait: 250 * time.Millisecond})
	m.Event(srl.Event{Kind: srl.EventSent, Key: key})
	m.Event(srl.Event{Kind: srl.EventResponse, Key: key, Status: 429})
	m.Event(srl.Event{Kind: srl.EventQuotaSeen, Key: key, Quota: srl.QuotaStatus{Known: true, Limit: 5000, Remaining: 1250, ResetAfter: 30 * time.Minute}})

	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m.Snapshot()); err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// {
	//   "degraded": false,
	//   "backend_errors": {},
	//   "header_parse_failures": {},
	//   "keys": [
	//     {
	//       "key": "api.github.com",
	//       "requests": {
	//         "2xx": 1,
	//         "429": 1,
	//         "sent": 2,
	//         "waited": 1
	//       },
	//       "decisions": {},
	//       "server_blocks": 0,
	//       "waits": {
	//         "count": 1,
	//         "total_seconds": 0.25
	//       },
	//       "quota": {
	//         "unit": "requests",
	//         "limit": 5000,
	//         "remaining": 1250,
	//         "reset_seconds": 1800,
	//         "utilization": 0.75
	//       },
	//       "quotas": [
	//         {
	//           "unit": "requests",
	//           "limit": 5000,
	//           "remaining": 1250,
	//           "reset_seconds": 1800,
	//           "utilization": 0.75
	//         }
	//       ]
	//     }
	//   ]
	// }
}

// Registered with a Prometheus registry, the Collector is scraped like any
// other (serve it with promhttp.Handler or promhttp.HandlerFor).
func Example_prometheus() {
	m := metrics.New(metrics.WithMaxKeys(1))
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)

	m.Event(srl.Event{Kind: srl.EventSent, Key: "api.github.com"})
	m.Event(srl.Event{Kind: srl.EventSent, Key: "api.openai.com"}) // past WithMaxKeys: "other"
	m.Event(srl.Event{Kind: srl.EventDegradedChange, Degraded: true})

	families, err := reg.Gather()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			labels := ""
			for _, l := range s.GetLabel() {
				labels += fmt.Sprintf(" %s=%q", l.GetName(), l.GetValue())
			}
			value := s.GetGauge().GetValue() + s.GetCounter().GetValue()
			fmt.Printf("%s%s %v\n", f.GetName(), labels, value)
		}
	}
	// Output:
	// smartratelimit_degraded 1
	// smartratelimit_requests_total key="api.github.com" outcome="sent" 1
	// smartratelimit_requests_total key="other" outcome="sent" 1
}
