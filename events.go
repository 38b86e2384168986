package smartratelimit

import (
	"context"
	"log/slog"
	"time"
)

// EventKind says what happened.
type EventKind int

const (
	// EventDecided: the limiter decided a request (Allowed, Degraded,
	// Cause). Emitted by redislimit for every Acquire, and by httpclient
	// for a request admitted from its lease (Leased; see WithLease).
	EventDecided EventKind = iota + 1
	// EventWaited: a request waited Wait for its budget before it was
	// sent.
	EventWaited
	// EventLimited: a request was refused without being sent (raise on
	// limit, or a wait past its deadline); Wait is the time it would have
	// had to wait, Cause the dimension.
	EventLimited
	// EventSent: a request went out to the server; Costs is what it
	// spends, in every unit, requests first.
	EventSent
	// EventResponse: the server answered with Status.
	EventResponse
	// EventTransportError: the request got no response (Err).
	EventTransportError
	// EventRetried: a request is being sent again (Attempt from 1).
	EventRetried
	// EventQuotaLearned: a response told the server's quota (Quota), for
	// the first time for this key in this process or with a different
	// limit than before.
	EventQuotaLearned
	// EventQuotaSeen: a response told the server's quota in one unit,
	// whatever it was (Quota, with its Unit; one event per unit); metrics
	// use it for gauges.
	EventQuotaSeen
	// EventBlocked: a response blocked the key for Wait (Retry-After, or
	// a refusal without it).
	EventBlocked
	// EventDegradedChange: the limiter stopped (Degraded true, Err the
	// cause) or resumed using its shared backend. Once per transition.
	EventDegradedChange
	// EventBackendError: a call to the shared backend failed; ErrorKind is
	// "unavailable", "misconfigured" or "data".
	EventBackendError
	// EventHeaderMalformed: a response carried a header family that could
	// not be trusted and was ignored (Dialect).
	EventHeaderMalformed
	// EventRefunded: a request that never reached the server gave back
	// what it was charged (Costs).
	EventRefunded
)

var eventNames = [...]string{
	EventDecided: "decided", EventWaited: "waited", EventLimited: "limited", EventSent: "sent",
	EventResponse: "response", EventTransportError: "transport_error", EventRetried: "retried",
	EventQuotaLearned: "quota_learned", EventQuotaSeen: "quota_seen", EventBlocked: "blocked",
	EventDegradedChange: "degraded_change", EventBackendError: "backend_error", EventHeaderMalformed: "header_malformed",
	EventRefunded: "refunded",
}

// String returns the kind's name, e.g. "quota_learned".
func (k EventKind) String() string {
	if k > 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one thing the limiter or the HTTP client did. Only the fields
// its Kind names are set. It never carries a URL, a header value or a
// credential: Key is the budget's name.
type Event struct {
	Kind      EventKind
	Key       string
	Allowed   bool
	Degraded  bool
	Cause     Cause
	Wait      time.Duration
	Status    int
	Attempt   int
	Quota     QuotaStatus
	Dialect   string
	ErrorKind string
	Err       error
	Costs     []Cost
	// Leased: the request was admitted from the process's lease, with no
	// call to the backend.
	Leased bool
}

// Observer hears events. Event is called synchronously on the goroutine
// that caused them, so it must be fast and safe for concurrent use;
// metrics.Collector and NewLogObserver are observers.
type Observer interface {
	Event(Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(Event)

// Event calls f(e).
func (f ObserverFunc) Event(e Event) { f(e) }

// Observers fans events out to several observers, skipping nil ones.
func Observers(list ...Observer) Observer {
	var kept multiObserver
	for _, o := range list {
		if o != nil {
			kept = append(kept, o)
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	return kept
}

type multiObserver []Observer

func (m multiObserver) Event(e Event) {
	for _, o := range m {
		o.Event(e)
	}
}

// NewLogObserver logs the events an operator cares about through l: waits,
// transport errors and each call that failed during an outage at Debug,
// refusals, blocks, learned quotas and malformed headers at Info,
// misconfigured or bad-data backend errors and degraded mode at Warn
// (recovery at Info): an outage is logged once, when it starts. Decisions, sends and responses are not logged; use
// metrics for volumes. Keys are logged, never URLs, headers or bodies.
func NewLogObserver(l *slog.Logger) Observer {
	if l == nil {
		return nil
	}
	return logObserver{l}
}

type logObserver struct{ l *slog.Logger }

func (o logObserver) Event(e Event) {
	ctx := context.Background()
	switch e.Kind {
	case EventWaited:
		o.l.DebugContext(ctx, "smartratelimit: waited for budget", "key", e.Key, "wait", e.Wait)
	case EventTransportError:
		o.l.DebugContext(ctx, "smartratelimit: request failed", "key", e.Key, "error", e.Err)
	case EventLimited:
		o.l.InfoContext(ctx, "smartratelimit: request refused", "key", e.Key, "cause", e.Cause.String(), "retry_after", e.Wait)
	case EventBlocked:
		o.l.InfoContext(ctx, "smartratelimit: server blocked the key", "key", e.Key, "for", e.Wait)
	case EventQuotaLearned:
		o.l.InfoContext(ctx, "smartratelimit: server quota learned", "key", e.Key, "limit", e.Quota.Limit,
			"remaining", e.Quota.Remaining, "reset_after", e.Quota.ResetAfter)
	case EventHeaderMalformed:
		o.l.InfoContext(ctx, "smartratelimit: malformed rate-limit header ignored", "key", e.Key, "dialect", e.Dialect)
	case EventBackendError:
		// An outage is logged once, by its degraded transition; each of its
		// failed calls only at Debug. Misconfiguration and bad data are
		// mistakes someone must fix: each is a warning.
		if e.ErrorKind == "unavailable" {
			o.l.DebugContext(ctx, "smartratelimit: backend unavailable", "key", e.Key, "error", e.Err)
			return
		}
		o.l.WarnContext(ctx, "smartratelimit: backend error", "key", e.Key, "kind", e.ErrorKind, "error", e.Err)
	case EventDegradedChange:
		if e.Degraded {
			o.l.WarnContext(ctx, "smartratelimit: shared backend unavailable, deciding by the failure policy", "cause", e.Err)
		} else {
			o.l.InfoContext(ctx, "smartratelimit: shared backend back")
		}
	}
}
