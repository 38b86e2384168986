package httpclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/httpclient/internal/dialect"
	"github.com/smartratelimit/smartratelimit/internal/wait"
	"github.com/smartratelimit/smartratelimit/redislimit"
	"github.com/smartratelimit/smartratelimit/storage"
)

// Transport is an http.RoundTripper that admits every request against its
// shared budget before sending it, learns the server's budget from every
// response, and optionally retries. See the package documentation.
//
// A Transport is safe for concurrent use by multiple goroutines.
type Transport struct {
	base    http.RoundTripper
	backend srl.Backend
	owned   *redislimit.Limiter
	closer  io.Closer // what WithStorage opened
	cfg     config
	scopes  scopes
	models  models
	learned learnedLimits
	clocks  serverClocks
	closed  atomic.Bool
	// deferred stores roomy successes' observations in the background;
	// nil for an in-memory backend.
	deferred *deferrer
	leases   leases
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport sending through base
// (http.DefaultTransport when nil). An invalid option makes every request
// fail with its error, before anything is sent.
func NewTransport(base http.RoundTripper, opts ...Option) *Transport {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if base == nil {
		base = http.DefaultTransport
	}
	t := &Transport{base: base, cfg: cfg, leases: leases{size: cfg.lease}}
	switch {
	case cfg.backend != nil:
		t.backend = cfg.backend
	case cfg.storageURL != "":
		var opts []storage.Option
		if cfg.observer != nil {
			opts = append(opts, storage.WithRedisOptions(redislimit.WithObserver(cfg.observer)))
		}
		b, closer, err := storage.Open(cfg.storageURL, opts...)
		if err != nil {
			if t.cfg.err == nil {
				t.cfg.err = fmt.Errorf("httpclient: %w", err)
			}
			b = fallback.New() // never used: every request fails with the error
		}
		t.backend, t.closer = b, closer
	case cfg.rdb != nil:
		opts := cfg.limiterOpts
		if cfg.observer != nil {
			opts = append(opts[:len(opts):len(opts)], redislimit.WithObserver(cfg.observer))
		}
		t.owned = redislimit.New(cfg.rdb, opts...)
		t.backend = t.owned
	default:
		t.backend = fallback.New()
	}
	if remote(t.backend) {
		t.deferred = newDeferrer(t.backend, deferredFlushAfter)
	}
	return t
}

// TransportOf returns the *Transport of a client New or Wrap returned, so
// that Status and Close need no type assertion; nil for any other client.
func TransportOf(c *http.Client) *Transport {
	if c == nil {
		return nil
	}
	t, _ := c.Transport.(*Transport)
	return t
}

// New returns an http.Client whose requests are rate-limited: by default
// against an in-memory store private to the client, learning each
// server's budget from its responses; with WithRedis, against budgets
// shared by every process using that Redis.
func New(opts ...Option) *http.Client {
	return &http.Client{Transport: NewTransport(nil, opts...)}
}

// Wrap returns a copy of c whose transport is rate-limited. Everything
// else of c is kept: its Jar (cookies), Timeout, CheckRedirect, and its
// Transport, which the copy sends through (so a transport that adds
// headers keeps adding them). c itself is not changed; a nil c is treated
// as http.DefaultClient.
func Wrap(c *http.Client, opts ...Option) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	wrapped := *c
	wrapped.Transport = NewTransport(c.Transport, opts...)
	return &wrapped
}

// limits returns the limits that apply to host (in canonical form).
func (t *Transport) limits(host string) (fixed, defaults []srl.Limit) {
	fixed, defaults = t.cfg.all.fixed, t.cfg.all.defaults
	if hl := t.cfg.hosts[host]; hl != nil {
		if hl.fixedSet {
			fixed = hl.fixed
		}
		if hl.defaultsSet {
			defaults = hl.defaults
		}
	}
	return fixed, defaults
}

// ErrClosedTransport is returned by every request and Status call after
// Close; it wraps smartratelimit.ErrClosed.
var ErrClosedTransport = fmt.Errorf("httpclient: %w", srl.ErrClosed)

func (t *Transport) usable() error {
	if t.closed.Load() {
		return ErrClosedTransport
	}
	return t.cfg.err
}

// RoundTrip admits req against its budget, sends it, learns from the
// response and, under a retry policy, sends it again when that is safe.
// It keeps the RoundTripper contract: req is not modified, its body is
// closed on every path, a response obtained is returned with a nil error
// (a retry that cannot be admitted in time returns the last response
// instead), and every wait ends with req's context. WithMaxWait bounds all
// of the request's waits together.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.usable(); err != nil {
		closeBody(req)
		return nil, err
	}
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("httpclient: request without URL")
	}
	ctx := req.Context()
	base := t.cfg.keyFunc(req)
	if base == "" {
		closeBody(req)
		return nil, fmt.Errorf("httpclient: no rate-limit key for a request to %q", req.URL.Host)
	}
	host := CanonicalHost(req.URL.Scheme, req.URL.Host)
	fixed, defaults := t.limits(host)
	cost, first := t.requestCost(req)
	if cost.Model != "" {
		base += "|" + cost.Model
		t.models.note(host, base)
	}
	budget := time.Now().Add(t.cfg.maxWait)
	var last *http.Response // kept while a retry waits for its budget
	var lastErr error
	for attempt := 0; ; attempt++ {
		key := t.scopes.key(base, req)
		r := srl.Request{Key: key, N: 1, Costs: cost.Costs, Limits: fixed, DefaultLimits: defaults, Probe: t.cfg.probe}
		d, err := t.decide(ctx, r, budget)
		if err != nil {
			closeBody(req)
			if attempt > 0 {
				// The retry could not be admitted in time: the caller gets
				// what the last attempt got, never a swallowed response.
				return last, lastErr
			}
			return nil, err
		}
		if last != nil {
			drainAndClose(last.Body)
			last = nil
		}
		out := first
		if attempt > 0 {
			t.emit(srl.Event{Kind: srl.EventRetried, Key: key, Attempt: attempt})
			if out, err = rewind(req); err != nil {
				return nil, err
			}
		}
		if t.cfg.observer != nil {
			t.emit(srl.Event{Kind: srl.EventSent, Key: key, Costs: append([]srl.Cost{{Unit: srl.UnitRequests, N: r.N}}, r.Costs...)})
		}
		sent := monoNow()
		resp, err := t.base.RoundTrip(out)
		var said dialect.Result
		if resp != nil {
			t.emit(srl.Event{Kind: srl.EventResponse, Key: key, Status: resp.StatusCode})
			said = t.learn(ctx, base, key, req, resp, d, sent)
		} else {
			t.emit(srl.Event{Kind: srl.EventTransportError, Key: key, Err: err})
			t.unsent(ctx, key, d, err)
		}
		delay, again := t.retryDelay(ctx, req, resp, err, attempt, said, budget)
		if !again {
			return resp, err
		}
		last, lastErr = resp, err
		if err := wait.Sleep(ctx, delay); err != nil {
			if last != nil {
				return last, nil
			}
			return nil, err
		}
	}
}

// unsent tells the backend about a request that got no response. When it
// never reached the server (no connection, no TLS session), what it spent
// is given back to the fleet. Otherwise the server may have counted it, at
// a moment no response will tell: it stays in flight (until InFlightAge),
// which keeps later responses from raising what is left past it. A probe's
// lease is released either way.
func (t *Transport) unsent(ctx context.Context, key string, d srl.Decision, err error) {
	var o srl.Observation
	if neverSent(err) && len(d.Charged) > 0 {
		o.Refunded = make([]srl.Cost, len(d.Charged))
		for i, c := range d.Charged {
			o.Refunded[i] = srl.Cost{Unit: c.Unit, N: c.N}
		}
		t.emit(srl.Event{Kind: srl.EventRefunded, Key: key, Costs: o.Refunded})
	}
	// The server may be failing: what this process leased of the key
	// goes back, and its next request asks the fleet.
	t.endLease(key)
	if len(o.Refunded) == 0 && !d.Report {
		return
	}
	o.Bare = true
	_ = t.backend.Observe(context.WithoutCancel(ctx), key, o)
}

// neverSent reports that a transport error happened before any byte of
// the request could reach the server: a failed name lookup, connection or
// TLS handshake.
func neverSent(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	var cert *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	switch {
	case errors.As(err, &dns), errors.As(err, &cert), errors.As(err, &header):
		return true
	case errors.As(err, &op):
		return op.Op == "dial"
	}
	return false
}

func (t *Transport) emit(e srl.Event) {
	if t.cfg.observer != nil {
		t.cfg.observer.Event(e)
	}
}

// admit waits for r's budget until budget (the request's whole wait), or
// fails at once under WithRaiseOnLimit. A request held while another one
// probes the server waits for the probe even then: that is not a limit,
// and it lasts at most the probe lease.
func (t *Transport) admit(ctx context.Context, r srl.Request, budget time.Time) (srl.Decision, error) {
	var d srl.Decision
	var err error
	if t.cfg.raiseOnLimit {
		probeEnds := time.Now().Add(r.Probe)
		for {
			if d, err = t.backend.Acquire(ctx, r); err != nil || d.Allowed {
				break
			}
			if d.Cause != srl.CauseProbe || !time.Now().Before(probeEnds) {
				err = &srl.LimitError{Key: r.Key, RetryAfter: d.RetryAfter, Cause: d.Cause}
				break
			}
			if err = wait.Sleep(ctx, d.RetryAfter); err != nil {
				break
			}
		}
	} else {
		// A positive bound: MaxWait 0 would mean "until the context ends".
		r.MaxWait = max(time.Until(budget), time.Nanosecond)
		var slept time.Duration
		d, slept, err = wait.ForSlept(ctx, t.backend, r, wait.Sleep, time.Now)
		if slept > 0 && err == nil {
			t.emit(srl.Event{Kind: srl.EventWaited, Key: r.Key, Wait: slept})
		}
	}
	var le *srl.LimitError
	if errors.As(err, &le) {
		t.emit(srl.Event{Kind: srl.EventLimited, Key: r.Key, Cause: le.Cause, Wait: le.RetryAfter})
	}
	return d, err
}

// learn parses what resp says about the server's budget and tells the
// backend, so every process sharing it learns too. A response without
// rate-limit information is reported only when the decision asked for it
// (the probe, or a streak of refusals that a success ends). It runs on a
// context detached from the caller's cancellation: a caller that stops
// reading right after the response must not make the fleet forget what
// the server said.
func (t *Transport) learn(ctx context.Context, base, key string, req *http.Request, resp *http.Response, d srl.Decision, sent time.Time) dialect.Result {
	spent := d.Charged
	in := dialect.Input{Header: resp.Header, StatusCode: resp.StatusCode, Received: monoNow()}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden {
		in.Body = peekBody(resp, t.cfg.bodyPrefix, peekWait)
	}
	said := dialect.Parse(in, t.cfg.headerMap)
	if said.Cached {
		if d.Report {
			// A cached response tells nothing fresh: release the probe
			// and settle what the request spent.
			_ = t.backend.Observe(context.WithoutCancel(ctx), key, srl.Observation{Bare: true, Charged: spent})
		}
		return said
	}
	learnedKey := t.scopes.learn(base, req, said.Scope)
	if d.Report && learnedKey != key {
		// The budget turned out to live under a scope: release the probe
		// lease of the key the request spent from, and settle its spend.
		_ = t.backend.Observe(context.WithoutCancel(ctx), key, srl.Observation{Bare: true, Charged: spent})
		spent = []srl.Charge{}
	}
	for _, family := range said.Malformed {
		t.emit(srl.Event{Kind: srl.EventHeaderMalformed, Key: learnedKey, Dialect: family})
	}
	o := said.Observation
	o.Charged = spent
	if date := resp.Header.Get("Date"); date != "" {
		// Only a Date the server sent tells its clock (said's falls back
		// to the receive time).
		t.clocks.record(req.URL.Host, in.Received, o.Date)
		o = sharpen(o, t.clocks.into(req.URL.Host, sent, o.Date))
	}
	if !said.Found {
		if !d.Report {
			return said
		}
		// The probe, a streak's end or a spend to settle must be heard even
		// though the server said nothing about its budget; learnedKey is
		// key here.
		_ = t.backend.Observe(context.WithoutCancel(ctx), key, srl.Observation{Bare: true, Succeeded: o.Succeeded, Date: o.Date, Charged: spent})
		return said
	}
	if t.cfg.reserve > 0 {
		o = t.withReserve(o)
	}
	switch {
	case t.deferred == nil:
		_ = t.backend.Observe(context.WithoutCancel(ctx), learnedKey, o)
	case !t.mayDefer(d, o):
		// What made this response urgent ends what this process leased of
		// the key: its next request asks the fleet, which will know.
		t.endLease(key)
		_ = t.deferred.storeNow(context.WithoutCancel(ctx), learnedKey, o)
	case !t.deferred.observe(learnedKey, o):
		_ = t.deferred.storeNow(context.WithoutCancel(ctx), learnedKey, o)
	}
	t.announce(learnedKey, said.Observation)
	return said
}

// withReserve keeps the safety reserve out of every advertised quota.
func (t *Transport) withReserve(o srl.Observation) srl.Observation {
	keep := func(limit, remaining int) int {
		if limit <= 0 {
			return remaining
		}
		return max(remaining-int(float64(limit)*t.cfg.reserve+0.999999), 0)
	}
	o.Remaining = keep(o.Limit, o.Remaining)
	if len(o.Quotas) > 0 {
		quotas := make([]srl.QuotaObservation, len(o.Quotas))
		for i, q := range o.Quotas {
			q.Remaining = keep(q.Limit, q.Remaining)
			quotas[i] = q
		}
		o.Quotas = quotas
	}
	return o
}

// announce reports what a response said: each quota, per unit (learned,
// when its limit is new for the key), and any block.
func (t *Transport) announce(key string, o srl.Observation) {
	if t.cfg.observer == nil {
		return
	}
	quotas := o.Quotas
	if o.Reset > 0 || o.Limit > 0 {
		top := srl.QuotaObservation{Unit: srl.UnitRequests, Limit: o.Limit, Remaining: o.Remaining, Reset: o.Reset}
		quotas = append([]srl.QuotaObservation{top}, quotas...)
	}
	for _, oq := range quotas {
		if oq.Reset <= 0 && oq.Limit <= 0 {
			continue
		}
		q := srl.QuotaStatus{Known: true, Unit: oq.Unit, Limit: oq.Limit, Remaining: oq.Remaining, ResetAfter: oq.Reset}
		t.emit(srl.Event{Kind: srl.EventQuotaSeen, Key: key, Quota: q})
		if t.learned.changed(key+" "+oq.Unit, oq.Limit) {
			t.emit(srl.Event{Kind: srl.EventQuotaLearned, Key: key, Quota: q})
		}
	}
	if o.RetryAfter > 0 || o.Limited {
		t.emit(srl.Event{Kind: srl.EventBlocked, Key: key, Wait: o.RetryAfter})
	}
}

// retryDelay decides whether to send req again after this attempt, and how
// long to wait first: the policy's delay, or the server's Retry-After when
// longer. A wait past the request's budget or deadline means no retry: the
// caller gets the last response.
func (t *Transport) retryDelay(ctx context.Context, req *http.Request, resp *http.Response, err error, attempt int, said dialect.Result, budget time.Time) (time.Duration, bool) {
	p := t.cfg.retry
	if attempt >= p.MaxRetries || ctx.Err() != nil || !p.retryable(req, resp, err, said.ShouldRetry) {
		return 0, false
	}
	delay := max(p.Delay(attempt+1), said.Observation.RetryAfter)
	if time.Until(budget) < delay {
		return 0, false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
		return 0, false
	}
	return delay, true
}

// Status returns the budget of a host as every process sharing the backend
// sees it (the source documents' get_status), with the limits configured
// for that host, and in Status.Scopes the sub-budgets this process spent
// from or learned for it: the scopes the server named (GitHub's "core",
// "search") and, for an LLM API, each model's ("api.openai.com|gpt-4.1"). host may be a host ("api.github.com",
// compared in canonical form: lower case, default port dropped) or a URL.
// Status.Found is false when nothing is stored for the host.
// Status.Utilization tells how much is spent.
func (t *Transport) Status(ctx context.Context, host string) (srl.Status, error) {
	if err := t.usable(); err != nil {
		return srl.Status{}, err
	}
	if t.deferred != nil {
		// What responses said before this call is part of the answer.
		if err := t.deferred.wait(ctx); err != nil {
			return srl.Status{}, err
		}
	}
	scheme := ""
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil || u.Host == "" {
			return srl.Status{}, fmt.Errorf("httpclient: status of %q: not a host or an absolute URL", host)
		}
		scheme, host = u.Scheme, u.Host
	}
	host = CanonicalHost(scheme, host)
	if host == "" {
		return srl.Status{}, errors.New("httpclient: status of an empty host")
	}
	fixed, defaults := t.limits(host)
	st, err := t.backend.Peek(ctx, srl.Request{Key: host, Limits: fixed, DefaultLimits: defaults})
	if err != nil {
		return st, err
	}
	var subkeys []string
	for _, scope := range t.scopes.of(host) {
		subkeys = append(subkeys, host+"|"+scope)
	}
	for _, model := range t.models.of(host) {
		subkeys = append(subkeys, model)
		for _, scope := range t.scopes.of(model) {
			subkeys = append(subkeys, model+"|"+scope)
		}
	}
	for _, key := range subkeys {
		sc, err := t.backend.Peek(ctx, srl.Request{Key: key, Limits: fixed})
		if err != nil {
			return st, err
		}
		st.Found = st.Found || sc.Found
		st.Scopes = append(st.Scopes, sc)
	}
	return st, nil
}

// Close stores the observations still deferred, releases the limiter the
// Transport built for WithRedis (it does not close the Redis client, nor a
// backend given with WithBackend), closes the store it opened for
// WithStorage, and closes idle connections. Requests and Status calls
// after Close fail with ErrClosedTransport.
func (t *Transport) Close() error {
	t.closed.Store(true)
	t.CloseIdleConnections()
	if t.deferred != nil {
		// What was leased and not spent goes back to the fleet, and what
		// responses said is stored, before the backend closes (each
		// observation is bounded by its own timeout).
		for key, left := range t.leases.dropAll() {
			t.refund(key, left)
		}
		_ = t.deferred.wait(context.Background())
	}
	if t.owned != nil {
		return t.owned.Close()
	}
	if t.closer != nil {
		return t.closer.Close()
	}
	return nil
}

// CloseIdleConnections closes the idle connections of the underlying
// transport, when it has them; http.Client.CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// rewind returns a copy of req with a fresh body, for a retry.
func rewind(req *http.Request) (*http.Request, error) {
	out := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return out, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("httpclient: rebuilding the body for a retry: %w", err)
	}
	out.Body = body
	return out, nil
}

// peekWait bounds how long the parser waits for the start of a refusal's
// body: a server that stalls mid-body must not hold the request up.
const peekWait = 50 * time.Millisecond

// peekBody reads up to n bytes of resp's body in the background and
// returns what arrived within wait, for the header parser. The caller still
// reads the whole body from its first byte: resp.Body is replaced by one
// that replays the prefix, then reads on.
func peekBody(resp *http.Response, n int, wait time.Duration) []byte {
	if resp.Body == nil || resp.Body == http.NoBody || n <= 0 {
		return nil
	}
	b := &peekedBody{rest: resp.Body, done: make(chan struct{})}
	go b.fill(n)
	resp.Body = b
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-b.done:
	case <-timer.C:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}

// peekedBody is a response body whose prefix is read ahead.
type peekedBody struct {
	rest io.ReadCloser
	done chan struct{} // closed when the prefix is read
	mu   sync.Mutex    // guards buf and err while fill runs
	buf  []byte
	err  error // what ended the prefix early (io.EOF at the body's end)
	off  int   // the caller's position in buf
}

func (b *peekedBody) fill(n int) {
	defer close(b.done)
	chunk := make([]byte, min(n, 1024))
	for have := 0; have < n; {
		m, err := b.rest.Read(chunk[:min(len(chunk), n-have)])
		b.mu.Lock()
		b.buf = append(b.buf, chunk[:m]...)
		b.err = err
		b.mu.Unlock()
		if err != nil {
			return
		}
		have += m
	}
}

// Read waits for the prefix (as the caller would wait for the body
// anyway), replays it, then reads on; the body's own error, if it ended
// within the prefix, comes after the bytes that did arrive.
func (b *peekedBody) Read(p []byte) (int, error) {
	<-b.done
	if b.off < len(b.buf) {
		m := copy(p, b.buf[b.off:])
		b.off += m
		return m, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.rest.Read(p)
}

// Close closes the underlying body, which also ends a read ahead that is
// still waiting for the server.
func (b *peekedBody) Close() error { return b.rest.Close() }

// learnedLimits remembers the last quota limit announced per key, for
// EventQuotaLearned. It holds at most maxLearned keys: past that it starts
// over, so a process that sees a million keys does not keep a million
// entries (a key then announces its quota as learned once more).
type learnedLimits struct {
	mu sync.Mutex
	m  map[string]int
}

const maxLearned = 4096

// changed records limit for key and reports whether it differs from the
// last one recorded.
func (l *learnedLimits) changed(key string, limit int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.m[key]; ok && prev == limit {
		return false
	}
	if l.m == nil || len(l.m) >= maxLearned {
		l.m = make(map[string]int)
	}
	l.m[key] = limit
	return true
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// drainAndClose reads a little of a discarded body so the connection can
// be reused, then closes it.
func drainAndClose(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	_ = body.Close()
}
