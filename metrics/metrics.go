// Package metrics turns the events of the limiter and the HTTP client into
// Prometheus metrics and a JSON snapshot, for fleets that need to see
// budgets, waits, 429s and outages without reading code. It is the only
// package of the module that imports the Prometheus client.
//
// A Collector is an smartratelimit.Observer, fed by httpclient.WithObserver
// or redislimit.WithObserver, and a prometheus.Collector, registered with
// any prometheus.Registerer and served by promhttp:
//
//	m := metrics.New()
//	prometheus.MustRegister(m)
//	client := httpclient.New(httpclient.WithRedis(rdb), httpclient.WithObserver(m))
//	http.Handle("/metrics", promhttp.Handler())
//
// Label cardinality is bounded: keys become label values only up to
// WithMaxKeys distinct keys (or only those of WithKeys); every other key
// is counted under "other". Raw URLs never become labels.
//
// A key becomes a label in the form Redis stores it under (see
// redislimit.RedisKey): as is, or, when it is not valid UTF-8, holds a
// control byte, a space or a brace, starts with '#', or is longer than 128
// bytes, as "#" and the first 32 hex digits of its SHA-256. So every label
// is valid UTF-8, which Prometheus requires (one invalid label value
// would fail every scrape), and it is the name "smartratelimit keys"
// prints and "smartratelimit status" accepts. The JSON snapshot uses the
// same names.
package metrics

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	srl "github.com/smartratelimit/smartratelimit"
)

// OtherKey is the label of keys beyond the bound.
const OtherKey = "other"

// DefaultMaxKeys is how many distinct keys get a label of their own.
const DefaultMaxKeys = 100

// WaitBuckets are the wait histogram's upper bounds, in seconds.
var WaitBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Request outcomes, the values of the outcome label.
const (
	OutcomeSent           = "sent"
	OutcomeWaited         = "waited"
	OutcomeLimited        = "limited"
	OutcomeRetried        = "retried"
	Outcome2xx            = "2xx"
	Outcome3xx            = "3xx"
	Outcome4xx            = "4xx"
	Outcome429            = "429"
	Outcome5xx            = "5xx"
	OutcomeTransportError = "transport_error"
)

var outcomes = [...]string{OutcomeSent, OutcomeWaited, OutcomeLimited, OutcomeRetried, Outcome2xx, Outcome3xx, Outcome4xx, Outcome429, Outcome5xx, OutcomeTransportError}

// Decision results, the values of the result label.
var results = [...]string{"allowed", "refused", "allowed_degraded", "refused_degraded"}

// Option configures a Collector.
type Option func(*Collector)

// WithKeys gives these keys, and only these, a label of their own; the
// rest are counted as "other". Default: the first DefaultMaxKeys keys seen.
func WithKeys(keys ...string) Option {
	return func(c *Collector) {
		c.allow = make(map[string]bool, len(keys))
		for _, k := range keys {
			c.allow[k] = true
		}
	}
}

// WithMaxKeys bounds how many distinct keys get a label of their own (the
// first seen); later ones are counted as "other". Default 100.
func WithMaxKeys(n int) Option {
	return func(c *Collector) {
		if n >= 0 {
			c.maxKeys = n
		}
	}
}

// Collector aggregates events. It is safe for concurrent use.
type Collector struct {
	allow   map[string]bool
	maxKeys int

	mu             sync.Mutex
	keys           map[string]*keyStats
	degraded       bool
	backendErrors  map[string]uint64
	headerFailures map[string]uint64

	descs descs
}

type keyStats struct {
	requests  [len(outcomes)]uint64
	decisions [len(results)]uint64
	blocks    uint64
	waits     histogram
	quotas    []srl.QuotaStatus // the last seen per unit, at most maxUnits
	spent     map[string]uint64 // by unit
	refunded  map[string]uint64 // by unit
}

// maxUnits bounds the units a key keeps figures for: a server names a
// handful (requests, tokens, input and output tokens).
const maxUnits = 8

func (s *keyStats) quota(unit string) *srl.QuotaStatus {
	for i := range s.quotas {
		if s.quotas[i].Unit == unit {
			return &s.quotas[i]
		}
	}
	if len(s.quotas) >= maxUnits {
		return nil
	}
	s.quotas = append(s.quotas, srl.QuotaStatus{Unit: unit})
	return &s.quotas[len(s.quotas)-1]
}

// count adds costs to a per-unit counter, under the same unit bound.
func count(m *map[string]uint64, costs []srl.Cost) {
	for _, c := range costs {
		if c.N <= 0 {
			continue
		}
		if *m == nil {
			*m = make(map[string]uint64)
		}
		unit := validLabel(c.Unit)
		if _, ok := (*m)[unit]; ok || len(*m) < maxUnits {
			(*m)[unit] += uint64(c.N)
		}
	}
}

// unitOf is the label of a quota's unit: requests when unnamed.
func unitOf(q srl.QuotaStatus) string {
	if q.Unit == "" {
		return srl.UnitRequests
	}
	return validLabel(q.Unit)
}

func outcomeIndex(o string) int { return slices.Index(outcomes[:], o) }

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	count  uint64
	sum    float64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(WaitBuckets))
	}
	if i := sort.SearchFloat64s(WaitBuckets, v); i < len(WaitBuckets) {
		h.counts[i]++
	}
	h.count++
	h.sum += v
}

// New returns an empty Collector.
func New(opts ...Option) *Collector {
	c := &Collector{
		maxKeys:        DefaultMaxKeys,
		keys:           make(map[string]*keyStats),
		backendErrors:  make(map[string]uint64),
		headerFailures: make(map[string]uint64),
		descs:          newDescs(),
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// label maps a key to its label value, under the cardinality bound.
func (c *Collector) label(key string) string {
	l := labelFor(key)
	if c.allow != nil {
		if c.allow[key] {
			return l
		}
		return OtherKey
	}
	if _, ok := c.keys[l]; ok || len(c.keys) < c.maxKeys {
		return l
	}
	return OtherKey
}

// maxPlainKeyLen is redislimit.MaxPlainKeyLen, which this package does not
// import (it would pull the Redis client into every user of metrics); a
// test holds the two rules together.
const maxPlainKeyLen = 128

// labelFor is the label of key: its name in Redis, between the braces
// (see the package documentation).
func labelFor(key string) string {
	if !needsHash(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "#" + hex.EncodeToString(sum[:16])
}

// needsHash is redislimit's rule for the keys it stores hashed.
func needsHash(key string) bool {
	if len(key) > maxPlainKeyLen || !utf8.ValidString(key) {
		return true
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c <= ' ', c == 0x7f, c == '{', c == '}', c == '#' && i == 0:
			return true
		}
	}
	return false
}

// validLabel makes a label value that is not a key valid UTF-8 (error
// kinds and dialect names come from the library and are ASCII; this only
// guards the scrape against a bug elsewhere).
func validLabel(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func (c *Collector) stats(key string) *keyStats {
	l := c.label(key)
	s := c.keys[l]
	if s == nil {
		s = &keyStats{}
		c.keys[l] = s
	}
	return s
}

// Event records one event; it implements smartratelimit.Observer.
func (c *Collector) Event(e srl.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Kind {
	case srl.EventSent:
		s := c.stats(e.Key)
		s.requests[outcomeIndex(OutcomeSent)]++
		count(&s.spent, e.Costs)
	case srl.EventRefunded:
		count(&c.stats(e.Key).refunded, e.Costs)
	case srl.EventWaited:
		s := c.stats(e.Key)
		s.requests[outcomeIndex(OutcomeWaited)]++
		s.waits.observe(e.Wait.Seconds())
	case srl.EventLimited:
		c.stats(e.Key).requests[outcomeIndex(OutcomeLimited)]++
	case srl.EventRetried:
		c.stats(e.Key).requests[outcomeIndex(OutcomeRetried)]++
	case srl.EventResponse:
		c.stats(e.Key).requests[outcomeIndex(statusOutcome(e.Status))]++
	case srl.EventTransportError:
		c.stats(e.Key).requests[outcomeIndex(OutcomeTransportError)]++
	case srl.EventDecided:
		i := 0
		if !e.Allowed {
			i = 1
		}
		if e.Degraded {
			i += 2
		}
		c.stats(e.Key).decisions[i]++
	case srl.EventQuotaSeen:
		q := e.Quota
		q.Unit = unitOf(q)
		if slot := c.stats(e.Key).quota(q.Unit); slot != nil {
			*slot = q
		}
	case srl.EventBlocked:
		c.stats(e.Key).blocks++
	case srl.EventDegradedChange:
		c.degraded = e.Degraded
	case srl.EventBackendError:
		c.backendErrors[validLabel(e.ErrorKind)]++
	case srl.EventHeaderMalformed:
		c.headerFailures[validLabel(e.Dialect)]++
	}
}

func statusOutcome(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return Outcome429
	case status >= 500:
		return Outcome5xx
	case status >= 400:
		return Outcome4xx
	case status >= 300:
		return Outcome3xx
	}
	return Outcome2xx
}

// --- Prometheus ----------------------------------------------------------

type descs struct {
	requests, decisions, blocks, wait, limit, remaining, reset, utilization, spent, refunded, degraded, backendErrors, headerFailures *prometheus.Desc
}

func newDescs() descs {
	key := []string{"key"}
	keyUnit := []string{"key", "unit"}
	return descs{
		requests: prometheus.NewDesc("smartratelimit_requests_total",
			"HTTP requests by budget key and outcome: sent, waited (for budget), limited (refused without sending), retried, the response class (2xx, 3xx, 4xx, 429, 5xx) or transport_error.",
			[]string{"key", "outcome"}, nil),
		decisions: prometheus.NewDesc("smartratelimit_decisions_total",
			"Admission decisions by budget key and result: allowed or refused, _degraded when made without the shared backend.",
			[]string{"key", "result"}, nil),
		blocks: prometheus.NewDesc("smartratelimit_server_blocks_total",
			"Responses that blocked the key (Retry-After, or a refusal for rate without it).", key, nil),
		wait: prometheus.NewDesc("smartratelimit_wait_seconds",
			"Time requests waited for their budget before being sent.", key, nil),
		limit: prometheus.NewDesc("smartratelimit_server_limit",
			"The server's quota per window in one unit (requests, tokens, input_tokens, output_tokens), as its last response said.", keyUnit, nil),
		remaining: prometheus.NewDesc("smartratelimit_server_remaining",
			"What was left of the server's quota in one unit, as its last response said.", keyUnit, nil),
		reset: prometheus.NewDesc("smartratelimit_server_reset_seconds",
			"Seconds until the server's quota in one unit resets, as its last response said.", keyUnit, nil),
		utilization: prometheus.NewDesc("smartratelimit_utilization_ratio",
			"Share of the server's quota in one unit spent (0 to 1), as its last response said.", keyUnit, nil),
		spent: prometheus.NewDesc("smartratelimit_spent_total",
			"What sent requests spent from the budget, by unit: requests, and the tokens a cost function estimated.", keyUnit, nil),
		refunded: prometheus.NewDesc("smartratelimit_refunded_total",
			"What requests that never reached the server gave back, by unit.", keyUnit, nil),
		degraded: prometheus.NewDesc("smartratelimit_degraded",
			"1 while the limiter decides without its shared backend (Redis unreachable), else 0.", nil, nil),
		backendErrors: prometheus.NewDesc("smartratelimit_backend_errors_total",
			"Failed calls to the shared backend by kind: unavailable, misconfigured, data.", []string{"kind"}, nil),
		headerFailures: prometheus.NewDesc("smartratelimit_header_parse_failures_total",
			"Rate-limit header families ignored as malformed, by dialect.", []string{"dialect"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	d := c.descs
	for _, desc := range []*prometheus.Desc{d.requests, d.decisions, d.blocks, d.wait, d.limit, d.remaining, d.reset, d.utilization, d.spent, d.refunded, d.degraded, d.backendErrors, d.headerFailures} {
		ch <- desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.descs
	for key, s := range c.keys {
		for i, n := range s.requests {
			if n > 0 {
				constMetric(ch, d.requests, prometheus.CounterValue, float64(n), key, outcomes[i])
			}
		}
		for i, n := range s.decisions {
			if n > 0 {
				constMetric(ch, d.decisions, prometheus.CounterValue, float64(n), key, results[i])
			}
		}
		if s.blocks > 0 {
			constMetric(ch, d.blocks, prometheus.CounterValue, float64(s.blocks), key)
		}
		if s.waits.count > 0 {
			buckets := make(map[float64]uint64, len(WaitBuckets))
			var cum uint64
			for i, ub := range WaitBuckets {
				cum += s.waits.counts[i]
				buckets[ub] = cum
			}
			constHistogram(ch, d.wait, s.waits.count, s.waits.sum, buckets, key)
		}
		for i := range s.quotas {
			q := &s.quotas[i]
			constMetric(ch, d.limit, prometheus.GaugeValue, float64(q.Limit), key, q.Unit)
			constMetric(ch, d.remaining, prometheus.GaugeValue, float64(q.Remaining), key, q.Unit)
			constMetric(ch, d.reset, prometheus.GaugeValue, q.ResetAfter.Seconds(), key, q.Unit)
			constMetric(ch, d.utilization, prometheus.GaugeValue, utilization(q), key, q.Unit)
		}
		for unit, n := range s.spent {
			constMetric(ch, d.spent, prometheus.CounterValue, float64(n), key, unit)
		}
		for unit, n := range s.refunded {
			constMetric(ch, d.refunded, prometheus.CounterValue, float64(n), key, unit)
		}
	}
	constMetric(ch, d.degraded, prometheus.GaugeValue, boolFloat(c.degraded))
	for kind, n := range c.backendErrors {
		constMetric(ch, d.backendErrors, prometheus.CounterValue, float64(n), kind)
	}
	for dialect, n := range c.headerFailures {
		constMetric(ch, d.headerFailures, prometheus.CounterValue, float64(n), dialect)
	}
}

// constMetric sends a metric, or drops it when it cannot be built: one bad
// series must never fail the scrape of all the others (a Must constructor
// panics, and the registry turns the panic into an error for the whole
// Gather, so /metrics would answer 500 until the process restarts).
func constMetric(ch chan<- prometheus.Metric, desc *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	if m, err := prometheus.NewConstMetric(desc, t, v, labels...); err == nil {
		ch <- m
	}
}

// constHistogram is constMetric for a histogram.
func constHistogram(ch chan<- prometheus.Metric, desc *prometheus.Desc, count uint64, sum float64, buckets map[float64]uint64, labels ...string) {
	if m, err := prometheus.NewConstHistogram(desc, count, sum, buckets, labels...); err == nil {
		ch <- m
	}
}

func utilization(q *srl.QuotaStatus) float64 {
	if q.Limit <= 0 {
		return 0
	}
	return math.Max(0, math.Min(1, float64(q.Limit-q.Remaining)/float64(q.Limit)))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// --- JSON ----------------------------------------------------------------

// Snapshot is the collector's state, for people without Prometheus. It
// marshals to stable JSON: keys sorted, maps with sorted keys.
type Snapshot struct {
	Degraded            bool              `json:"degraded"`
	BackendErrors       map[string]uint64 `json:"backend_errors"`
	HeaderParseFailures map[string]uint64 `json:"header_parse_failures"`
	Keys                []KeySnapshot     `json:"keys"`
}

// KeySnapshot is one key's (or "other"'s) figures.
type KeySnapshot struct {
	Key          string            `json:"key"`
	Requests     map[string]uint64 `json:"requests"`
	Decisions    map[string]uint64 `json:"decisions"`
	ServerBlocks uint64            `json:"server_blocks"`
	Waits        WaitSnapshot      `json:"waits"`
	// Quota is the server's quota in requests (or, when it advertised
	// none, its first); Quotas has one per unit, requests first.
	Quota    *QuotaSnapshot    `json:"quota,omitempty"`
	Quotas   []QuotaSnapshot   `json:"quotas,omitempty"`
	Spent    map[string]uint64 `json:"spent,omitempty"`
	Refunded map[string]uint64 `json:"refunded,omitempty"`
}

// WaitSnapshot summarises the waits for budget.
type WaitSnapshot struct {
	Count        uint64  `json:"count"`
	TotalSeconds float64 `json:"total_seconds"`
}

// QuotaSnapshot is the server's quota in one unit as its last response
// said.
type QuotaSnapshot struct {
	Unit         string  `json:"unit"`
	Limit        int     `json:"limit"`
	Remaining    int     `json:"remaining"`
	ResetSeconds float64 `json:"reset_seconds"`
	Utilization  float64 `json:"utilization"`
}

// Snapshot returns the collector's state now.
func (c *Collector) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{
		Degraded:            c.degraded,
		BackendErrors:       copyCounts(c.backendErrors),
		HeaderParseFailures: copyCounts(c.headerFailures),
		Keys:                make([]KeySnapshot, 0, len(c.keys)),
	}
	for key, ks := range c.keys {
		k := KeySnapshot{Key: key, Requests: map[string]uint64{}, Decisions: map[string]uint64{}, ServerBlocks: ks.blocks,
			Waits: WaitSnapshot{Count: ks.waits.count, TotalSeconds: ks.waits.sum}}
		for i, n := range ks.requests {
			if n > 0 {
				k.Requests[outcomes[i]] = n
			}
		}
		for i, n := range ks.decisions {
			if n > 0 {
				k.Decisions[results[i]] = n
			}
		}
		for i := range ks.quotas {
			q := &ks.quotas[i]
			k.Quotas = append(k.Quotas, QuotaSnapshot{Unit: q.Unit, Limit: q.Limit, Remaining: q.Remaining, ResetSeconds: q.ResetAfter.Seconds(), Utilization: utilization(q)})
		}
		sort.SliceStable(k.Quotas, func(i, j int) bool {
			return k.Quotas[i].Unit == srl.UnitRequests && k.Quotas[j].Unit != srl.UnitRequests ||
				(k.Quotas[i].Unit == srl.UnitRequests) == (k.Quotas[j].Unit == srl.UnitRequests) && k.Quotas[i].Unit < k.Quotas[j].Unit
		})
		if len(k.Quotas) > 0 {
			k.Quota = &k.Quotas[0]
		}
		if len(ks.spent) > 0 {
			k.Spent = copyCounts(ks.spent)
		}
		if len(ks.refunded) > 0 {
			k.Refunded = copyCounts(ks.refunded)
		}
		s.Keys = append(s.Keys, k)
	}
	sort.Slice(s.Keys, func(i, j int) bool { return s.Keys[i].Key < s.Keys[j].Key })
	return s
}

func copyCounts(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SnapshotHandler serves the snapshot as JSON.
func (c *Collector) SnapshotHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c.Snapshot())
	})
}

var (
	_ srl.Observer         = (*Collector)(nil)
	_ prometheus.Collector = (*Collector)(nil)
)
