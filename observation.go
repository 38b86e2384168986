package smartratelimit

import (
	"fmt"
	"strings"
	"time"
)

// Units a quota can count. A server may advertise several at once (an LLM
// API: requests and tokens); each is its own quota, and a request spends
// from every one it has a cost in. Other names are allowed (IETF "qu"
// values such as "content-bytes"): lower-case ASCII letters, digits, '-'
// and '_', at most MaxUnitLen bytes.
const (
	UnitRequests     = "requests"
	UnitTokens       = "tokens"
	UnitInputTokens  = "input_tokens"
	UnitOutputTokens = "output_tokens"
)

// MaxUnitLen bounds a unit's name; MaxQuotas bounds the quotas one key holds
// (further units are ignored).
const (
	MaxUnitLen = 32
	MaxQuotas  = 8
)

// Observation is what one HTTP response said about the server's budget,
// with every time converted to a duration measured from the response's own
// Date header, so that no pod's clock ever enters the shared state.
//
// The quota part (Limit, Remaining, Window, in Unit) only counts when Reset
// is positive: a remaining count without a reset time cannot be placed in a
// window. Remaining is then taken literally, so 0 means "spent". Quotas
// holds the quotas of further units the same response advertised.
type Observation struct {
	// Limit is the size of the server's window budget; 0 when unknown.
	Limit int
	// Remaining is what is left of it in the current window.
	Remaining int
	// Reset is how long until the window resets; 0 when unknown.
	Reset time.Duration
	// RetryAfter is how long the server asked every caller to stay away.
	RetryAfter time.Duration
	// Window is the length of the server's window, when it says (the IETF
	// "w=" parameter); 0 when unknown.
	Window time.Duration
	// Limited reports that the response refused the call for rate (an HTTP
	// 429, or a GitHub 403 secondary limit). A refusal that carries a
	// spent quota (remaining 0 and a reset) or a RetryAfter blocks until
	// then; one without timing information blocks for a backoff that
	// doubles with each consecutive refusal (refusals arriving while that
	// block is in force count once).
	Limited bool

	// ResetSlack is how much Reset may exceed the server's true reset
	// because of the resolution of the headers it was read from (an epoch
	// in whole seconds against a Date in whole seconds: up to 1s). Reset
	// already includes it, so the fleet never assumes a window ended
	// early; the window length is learned without it.
	ResetSlack time.Duration
	// Date is the server's clock when it produced the response (its Date
	// header), which orders observations: a response the server produced in
	// a later second always counts, even when it reports an earlier reset.
	// Zero when unknown: the observation is then ordered by its reset only.
	Date time.Time
	// Unit names what Limit and Remaining count; "" means UnitRequests.
	Unit string
	// Quotas are the quotas of other units the same response advertised.
	Quotas []QuotaObservation
	// Succeeded reports a 2xx or 3xx response: it ends a streak of
	// refusals.
	Succeeded bool
	// Bare reports a response that carried no rate-limit information at
	// all. A key whose probe (see Request.Probe) gets a bare success is
	// not probed again for a while.
	Bare bool
	// Charged is what the request this response answers was spent at
	// admission: its decision's Charged (an empty non-nil slice when no
	// quota was known then). Until its response is observed a spend is in
	// flight: a response's remaining count does not know it yet. An
	// observation with Charged set (httpclient always sets it) has what is
	// still in flight, and what was settled since the request was admitted
	// (see Charge.Mark), subtracted from what it says is left, so that it
	// may safely raise the remaining count: an estimate larger than what
	// the server charged returns to the fleet with the response. One
	// without it (nil) is taken at its word. Report it with the response,
	// or alone (with Bare) when the request failed.
	Charged []Charge
	// Refunded is what the request was charged but never spent, because
	// it failed before it reached the server (a refused connection, a
	// failed TLS handshake): it is given back to the fleet, and stops
	// counting as in flight. An estimate the server charged differently is
	// settled by what the server says is left (see Charged), not here.
	Refunded []Cost
}

// QuotaObservation is one quota a response advertised, in one unit; see
// Observation for the meaning of each field.
type QuotaObservation struct {
	Unit             string
	Limit, Remaining int
	Reset, Window    time.Duration
	ResetSlack       time.Duration
}

// Bounds applied to every observation before it reaches shared state, so a
// garbage header can never block a fleet for days or overflow arithmetic.
const (
	// MaxHorizon is the furthest an observed Reset, RetryAfter or Window may
	// reach: one day, which covers daily quotas. Beyond it the observation
	// is rejected with ErrInvalidObservation.
	MaxHorizon = 24 * time.Hour
	// MaxCount is the largest Limit or Remaining accepted (2^40).
	MaxCount = 1 << 40
)

// Normalize returns the form of o that backends store, or an error wrapping
// ErrInvalidObservation. The rules, shared by every backend:
//
//   - a negative field, or a count above MaxCount, rejects the observation;
//   - a Reset, RetryAfter, Window or ResetSlack beyond MaxHorizon rejects
//     it, and so does a unit name that is not lower-case ASCII letters,
//     digits, '-' and '_' (at most MaxUnitLen bytes);
//   - Remaining above a known Limit is clamped to Limit;
//   - a quota without a Reset is dropped, and so are quotas beyond
//     MaxQuotas and a second quota of a unit already given;
//   - the quota of Limit, Remaining and Reset moves into Quotas, first, so
//     that Quotas holds every quota (Limit, Remaining, Reset, Window,
//     ResetSlack and Unit are then zero);
//   - ResetSlack is at most Reset; durations are rounded up to whole
//     microseconds.
//
// Call IsZero on the result to learn whether anything is left to store.
func (o Observation) Normalize() (Observation, error) {
	if o.RetryAfter < 0 || o.RetryAfter > MaxHorizon {
		return Observation{}, fmt.Errorf("%w: retry-after %v outside [0, %v]", ErrInvalidObservation, o.RetryAfter, MaxHorizon)
	}
	quotas := make([]QuotaObservation, 0, 1+len(o.Quotas))
	if o.Limit != 0 || o.Remaining != 0 || o.Reset != 0 || o.Window != 0 || o.ResetSlack != 0 || o.Unit != "" {
		quotas = append(quotas, QuotaObservation{Unit: o.Unit, Limit: o.Limit, Remaining: o.Remaining, Reset: o.Reset, Window: o.Window, ResetSlack: o.ResetSlack})
	}
	quotas = append(quotas, o.Quotas...)
	kept := quotas[:0]
	for _, q := range quotas {
		q, err := q.normalize()
		if err != nil {
			return Observation{}, err
		}
		if q.Reset == 0 || len(kept) >= MaxQuotas || hasUnit(kept, q.Unit) {
			continue
		}
		kept = append(kept, q)
	}
	for _, c := range o.Charged {
		if err := ValidUnit(c.Unit); err != nil {
			return Observation{}, err
		}
		if c.N < 0 || c.N > MaxCount {
			return Observation{}, fmt.Errorf("%w: charged %d %s outside [0, %d]", ErrInvalidObservation, c.N, c.Unit, MaxCount)
		}
		if c.Mark < 0 || c.Mark > MaxCount+1 {
			return Observation{}, fmt.Errorf("%w: charge mark %d outside [0, %d]", ErrInvalidObservation, c.Mark, MaxCount+1)
		}
	}
	for _, c := range o.Refunded {
		if err := ValidUnit(c.Unit); err != nil {
			return Observation{}, err
		}
		if c.N < 0 || c.N > MaxCount {
			return Observation{}, fmt.Errorf("%w: refunded %d %s outside [0, %d]", ErrInvalidObservation, c.N, c.Unit, MaxCount)
		}
	}
	if len(o.Refunded) > MaxQuotas {
		o.Refunded = o.Refunded[:MaxQuotas]
	}
	if len(o.Charged) > MaxQuotas {
		o.Charged = o.Charged[:MaxQuotas]
	}
	if o.Charged != nil && len(o.Charged) == 0 {
		o.Charged = []Charge{}
	}
	o.Limit, o.Remaining, o.Reset, o.Window, o.ResetSlack, o.Unit = 0, 0, 0, 0, 0, ""
	o.Quotas = nil
	if len(kept) > 0 {
		o.Quotas = kept
	}
	o.RetryAfter = roundUpMicro(o.RetryAfter)
	return o, nil
}

func (q QuotaObservation) normalize() (QuotaObservation, error) {
	if q.Limit < 0 || q.Remaining < 0 || q.Reset < 0 || q.Window < 0 || q.ResetSlack < 0 {
		return q, fmt.Errorf("%w: negative value in %+v", ErrInvalidObservation, q)
	}
	if q.Limit > MaxCount || q.Remaining > MaxCount {
		return q, fmt.Errorf("%w: count above %d in %+v", ErrInvalidObservation, MaxCount, q)
	}
	if q.Reset > MaxHorizon || q.Window > MaxHorizon || q.ResetSlack > MaxHorizon {
		return q, fmt.Errorf("%w: time beyond %v in %+v", ErrInvalidObservation, MaxHorizon, q)
	}
	if q.Unit == "" {
		q.Unit = UnitRequests
	}
	if err := ValidUnit(q.Unit); err != nil {
		return q, err
	}
	if q.Limit > 0 && q.Remaining > q.Limit {
		q.Remaining = q.Limit
	}
	q.Reset = roundUpMicro(q.Reset)
	q.Window = roundUpMicro(q.Window)
	q.ResetSlack = min(roundUpMicro(q.ResetSlack), q.Reset)
	return q, nil
}

func hasUnit(qs []QuotaObservation, unit string) bool {
	for _, q := range qs {
		if q.Unit == unit {
			return true
		}
	}
	return false
}

// ValidUnit reports why unit cannot name a quota, wrapping
// ErrInvalidObservation, or nil.
func ValidUnit(unit string) error {
	// The errors quote a copy of unit: quoting unit itself would make it
	// escape, and with it (escape analysis follows a struct as a whole)
	// the slices of every request validated, on every decision.
	if unit == "" || len(unit) > MaxUnitLen {
		return fmt.Errorf("%w: unit %q must be 1 to %d bytes", ErrInvalidObservation, strings.Clone(unit), MaxUnitLen)
	}
	if strings.IndexFunc(unit, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return fmt.Errorf("%w: unit %q must be lower-case ASCII letters, digits, '-' or '_'", ErrInvalidObservation, strings.Clone(unit))
	}
	return nil
}

// IsZero reports that o carries nothing a backend would store.
func (o Observation) IsZero() bool {
	return o.Reset == 0 && len(o.Quotas) == 0 && o.RetryAfter == 0 && !o.Limited && !o.Succeeded && !o.Bare && len(o.Charged) == 0 && len(o.Refunded) == 0
}

func roundUpMicro(d time.Duration) time.Duration {
	return time.Duration(ceilMicros(d)) * time.Microsecond
}
