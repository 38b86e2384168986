// Package serverlog records what a rate-limited HTTP server admitted, as
// the server saw it, and counts it in the server's own windows: the judge
// of the real-server fleet tests, which must not trust the client under
// test to say how it did.
package serverlog

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Record is one request as the server saw it.
type Record struct {
	// Arrived is when the request reached the wrapper around the
	// middleware, just before the middleware decided; Done is when the
	// middleware's handler returned, the response written.
	Arrived, Done time.Time
	// Status is the final status the middleware answered (200 when the
	// handler wrote a body without a header).
	Status int
	// Admitted reports that the request passed the middleware and reached
	// the application handler behind it.
	Admitted bool
	// ID is the request's IDHeader, set by the client to match what it
	// sent with what the server saw.
	ID string
	// Told is what the response said of the budget: its rate-limit and
	// Retry-After headers, "name=value" in name order.
	Told string
}

// IDHeader names each request for Record.ID.
const IDHeader = "X-Fleet-Request"

// Sample is the first response of one status, for the log.
type Sample struct {
	Status int
	Header http.Header
	Body   string
}

// String formats the sample on one line, headers sorted.
func (s Sample) String() string {
	names := make([]string, 0, len(s.Header))
	for k := range s.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%d", s.Status)
	for _, k := range names {
		fmt.Fprintf(&b, " | %s: %s", k, strings.Join(s.Header[k], ", "))
	}
	if body := strings.TrimSpace(s.Body); body != "" {
		fmt.Fprintf(&b, " | body %q", body)
	}
	return b.String()
}

// Log records every request a wrapped handler serves.
type Log struct {
	mu      sync.Mutex
	records []Record
	samples map[int]Sample
}

type admittedKey struct{}

// App is the application behind the middleware: it marks the request
// admitted and answers 200 "ok".
var App = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if flag, ok := r.Context().Value(admittedKey{}).(*bool); ok {
		*flag = true
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
})

// Wrap returns limited (the middleware with App behind it, as build
// returns it) wrapped so that l records each request: its arrival, the
// status the middleware returned, and whether it reached App.
func (l *Log) Wrap(limited http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now().Round(0)
		admitted := new(bool)
		sw := &statusWriter{ResponseWriter: w}
		limited.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), admittedKey{}, admitted)))
		done := time.Now().Round(0)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.records = append(l.records, Record{Arrived: arrived, Done: done, Status: status, Admitted: *admitted, ID: r.Header.Get(IDHeader), Told: told(sw.header)})
		if l.samples == nil {
			l.samples = map[int]Sample{}
		}
		if _, ok := l.samples[status]; !ok {
			l.samples[status] = Sample{Status: status, Header: sw.header, Body: sw.body.String()}
		}
	})
}

// told formats the budget headers of h (see Record.Told).
func told(h http.Header) string {
	var names []string
	for k := range h {
		if l := strings.ToLower(k); strings.Contains(l, "ratelimit") || strings.Contains(l, "rate-limit") || l == "retry-after" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + strings.Join(h[k], ",")
	}
	return strings.Join(parts, " ")
}

// Records returns every request recorded so far, in order of arrival.
func (l *Log) Records() []Record {
	l.mu.Lock()
	out := slices.Clone(l.records)
	l.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Arrived.Before(out[j].Arrived) })
	return out
}

// Sample returns the first response recorded with status.
func (l *Log) Sample(status int) (Sample, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.samples[status]
	return s, ok
}

// statusWriter keeps the status, the headers as sent and the start of
// the body.
type statusWriter struct {
	http.ResponseWriter
	status int
	header http.Header
	body   strings.Builder
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.header = w.ResponseWriter.Header().Clone()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if n := 200 - w.body.Len(); n > 0 {
		w.body.Write(p[:min(n, len(p))])
	}
	return w.ResponseWriter.Write(p)
}

// Window is one of a server's windows and what it saw in it.
type Window struct {
	Start, End                  time.Time
	Requests, Admitted, Limited int
	// Unopened marks a window of a server whose windows open on a request
	// (Expiring) that no request opened: the fleet had stopped sending. It
	// is placed at the earliest instant one could have opened.
	Unopened bool
}

// Windowing splits records (in order of arrival) into a server's windows,
// every window from the first record's to the one holding until (the end
// of the run), empty ones included: a fleet that stops early leaves them
// empty, not absent.
type Windowing func(records []Record, until time.Time) []Window

// Aligned are fixed windows of period on the wall-clock grid shifted by
// offset: the window of t starts at t−offset truncated to period, plus
// offset (go-chi/httprate's local counter).
func Aligned(period, offset time.Duration) Windowing {
	return func(recs []Record, until time.Time) []Window {
		if len(recs) == 0 {
			return nil
		}
		origin := recs[0].Arrived.Add(-offset).Truncate(period).Add(offset)
		return grid(recs, origin, period, until)
	}
}

// FromFirstRequest are consecutive windows of period from the arrival of
// the first request, whether or not later windows see any (a bucket that
// ticks from its creation, sethvargo/go-limiter's memorystore).
func FromFirstRequest(period time.Duration) Windowing {
	return func(recs []Record, until time.Time) []Window {
		if len(recs) == 0 {
			return nil
		}
		return grid(recs, recs[0].Arrived, period, until)
	}
}

// FromFirstAdmitted are consecutive periods from the arrival of the first
// admitted request: the windows of a GCRA or token-bucket server, which
// has none of its own.
func FromFirstAdmitted(period time.Duration) Windowing {
	return func(recs []Record, until time.Time) []Window {
		i := slices.IndexFunc(recs, func(r Record) bool { return r.Admitted })
		if i < 0 {
			return nil
		}
		return grid(recs[i:], recs[i].Arrived, period, until)
	}
}

// Expiring are windows opened by the first request after the previous one
// expired, each lasting period, its end included (ulule/limiter's memory
// store: a counter expires when now > expiration). Between two windows
// there may be time that belongs to none.
func Expiring(period time.Duration) Windowing {
	return func(recs []Record, until time.Time) []Window {
		var ws []Window
		for _, r := range recs {
			if len(ws) == 0 || r.Arrived.After(ws[len(ws)-1].End) {
				ws = append(ws, Window{Start: r.Arrived, End: r.Arrived.Add(period)})
			}
			ws[len(ws)-1].add(r)
		}
		for len(ws) > 0 && ws[len(ws)-1].End.Before(until) {
			end := ws[len(ws)-1].End
			ws = append(ws, Window{Start: end, End: end.Add(period), Unopened: true})
		}
		return ws
	}
}

func grid(recs []Record, origin time.Time, period time.Duration, until time.Time) []Window {
	last := recs[len(recs)-1].Arrived
	if until.After(last) {
		last = until
	}
	n := int(last.Sub(origin)/period) + 1
	ws := make([]Window, n)
	for i := range ws {
		ws[i].Start = origin.Add(time.Duration(i) * period)
		ws[i].End = ws[i].Start.Add(period)
	}
	for _, r := range recs {
		if r.Arrived.Before(origin) {
			continue
		}
		ws[int(r.Arrived.Sub(origin)/period)].add(r)
	}
	return ws
}

func (w *Window) add(r Record) {
	w.Requests++
	if r.Admitted {
		w.Admitted++
	}
	if r.Status == http.StatusTooManyRequests {
		w.Limited++
	}
}

// Summary is what a server saw during one run, counted in its windows.
type Summary struct {
	Requests, OK, Admitted, Limited, Other int
	// FirstResponse is when the middleware finished its first response;
	// LimitedAfterFirst counts the 429s to requests that arrived after it.
	FirstResponse     time.Time
	LimitedAfterFirst int

	Budget  int           // admissions the server allows per window
	Period  time.Duration // the length of a window
	Windows []Window
	// Full are the indexes of the full windows: entirely inside the run,
	// not the first.
	Full []int
	// FullUsed of FullBudget were admitted in the full windows.
	FullUsed, FullBudget int
	// Over [SpanStart, SpanEnd], from the end of the first window to the
	// end of the last full one (or the opening of the next window, when
	// that came later), SpanUsed were admitted of the SpanBudget the
	// server allowed in that time (Budget per Period): time no window
	// covered is budget lost.
	SpanStart, SpanEnd time.Time
	SpanUsed           int
	SpanBudget         float64
}

// Summarize counts records (in order of arrival) in the windows of w for a
// run from runStart to runEnd, against budget admissions per period.
func Summarize(recs []Record, w Windowing, runStart, runEnd time.Time, budget int, period time.Duration) Summary {
	s := Summary{Requests: len(recs), Budget: budget, Period: period, Windows: w(recs, runEnd)}
	for _, r := range recs {
		switch r.Status {
		case http.StatusOK:
			s.OK++
		case http.StatusTooManyRequests:
			s.Limited++
		default:
			s.Other++
		}
		if r.Admitted {
			s.Admitted++
		}
		if s.FirstResponse.IsZero() || r.Done.Before(s.FirstResponse) {
			s.FirstResponse = r.Done
		}
	}
	for _, r := range recs {
		if r.Status == http.StatusTooManyRequests && r.Arrived.After(s.FirstResponse) {
			s.LimitedAfterFirst++
		}
	}
	for i, win := range s.Windows {
		if i == 0 || win.Start.Before(runStart) || win.End.After(runEnd) {
			continue
		}
		s.Full = append(s.Full, i)
		s.FullUsed += win.Admitted
		s.FullBudget += budget
	}
	if len(s.Full) == 0 {
		return s
	}
	// The full windows are consecutive and no request falls between two
	// windows (a request there would have opened one), so the span
	// admitted what they did; only its budget differs, by the time no
	// window covered.
	last := s.Full[len(s.Full)-1]
	s.SpanStart, s.SpanEnd = s.Windows[0].End, s.Windows[last].End
	if last+1 < len(s.Windows) && s.Windows[last+1].Start.After(s.SpanEnd) {
		s.SpanEnd = s.Windows[last+1].Start
		if s.SpanEnd.After(runEnd) {
			s.SpanEnd = runEnd
		}
	}
	s.SpanUsed = s.FullUsed
	s.SpanBudget = float64(budget) * float64(s.SpanEnd.Sub(s.SpanStart)) / float64(period)
	return s
}

// FullPercent is the share of the full windows' budget that was admitted.
func (s Summary) FullPercent() float64 {
	if s.FullBudget == 0 {
		return 0
	}
	return 100 * float64(s.FullUsed) / float64(s.FullBudget)
}

// SpanPercent is the share of the budget over the span of the full
// windows that was admitted.
func (s Summary) SpanPercent() float64 {
	if s.SpanBudget == 0 {
		return 0
	}
	return 100 * float64(s.SpanUsed) / s.SpanBudget
}

// Under returns the full windows that admitted less than fraction of the
// budget.
func (s Summary) Under(fraction float64) []int {
	var out []int
	for _, i := range s.Full {
		if float64(s.Windows[i].Admitted) < fraction*float64(s.Budget) {
			out = append(out, i)
		}
	}
	return out
}

// Describe lists the windows relative to origin, full ones marked, e.g.
// "w1* [+1.00s +3.00s] 20/20 of 34".
func (s Summary) Describe(origin time.Time) string {
	var b strings.Builder
	for i, w := range s.Windows {
		mark := ""
		if slices.Contains(s.Full, i) {
			mark = "*"
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "w%d%s [%+.2fs %+.2fs] %d/%d of %d", i, mark,
			w.Start.Sub(origin).Seconds(), w.End.Sub(origin).Seconds(), w.Admitted, s.Budget, w.Requests)
		if w.Limited > 0 {
			fmt.Fprintf(&b, " (%d×429)", w.Limited)
		}
		if w.Unopened {
			b.WriteString(" (no request opened it)")
		}
	}
	return b.String()
}
