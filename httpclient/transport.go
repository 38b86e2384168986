package httpclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/httpclient/internal/dialect"
	"github.com/smartratelimit/smartratelimit/internal/wait"
	"github.com/smartratelimit/smartratelimit/redislimit"
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
	cfg     config
	scopes  scopes
	learned sync.Map // key → the last quota limit reported, for EventQuotaLearned
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
	t := &Transport{base: base, cfg: cfg}
	switch {
	case cfg.backend != nil:
		t.backend = cfg.backend
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

// limits returns the limits that apply to host.
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

// RoundTrip admits req against its budget, sends it, learns from the
// response and, under a retry policy, sends it again when that is safe.
// It keeps the RoundTripper contract: req is not modified, its body is
// closed on every path, a response obtained is returned with a nil error,
// and every wait ends with req's context.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.cfg.err; err != nil {
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
	fixed, defaults := t.limits(req.URL.Host)
	for attempt := 0; ; attempt++ {
		key := t.scopes.key(base, req)
		if err := t.admit(ctx, srl.Request{Key: key, N: 1, Limits: fixed, DefaultLimits: defaults}); err != nil {
			closeBody(req)
			return nil, err
		}
		out := req
		if attempt > 0 {
			t.emit(srl.Event{Kind: srl.EventRetried, Key: key, Attempt: attempt})
			var err error
			if out, err = rewind(req); err != nil {
				return nil, err
			}
		}
		t.emit(srl.Event{Kind: srl.EventSent, Key: key})
		resp, err := t.base.RoundTrip(out)
		var said dialect.Result
		if resp != nil {
			t.emit(srl.Event{Kind: srl.EventResponse, Key: key, Status: resp.StatusCode})
			said = t.learn(ctx, base, req, resp)
		} else {
			t.emit(srl.Event{Kind: srl.EventTransportError, Key: key, Err: err})
		}
		delay, again := t.retryDelay(ctx, req, resp, err, attempt, said)
		if !again {
			return resp, err
		}
		if resp != nil {
			drainAndClose(resp.Body)
		}
		if err := wait.Sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

func (t *Transport) emit(e srl.Event) {
	if t.cfg.observer != nil {
		t.cfg.observer.Event(e)
	}
}

// admit waits for r's budget, or fails at once under WithRaiseOnLimit.
func (t *Transport) admit(ctx context.Context, r srl.Request) error {
	var err error
	if t.cfg.raiseOnLimit {
		var d srl.Decision
		if d, err = t.backend.Acquire(ctx, r); err == nil && !d.Allowed {
			err = &srl.LimitError{Key: r.Key, RetryAfter: d.RetryAfter, Cause: d.Cause}
		}
	} else {
		r.MaxWait = t.cfg.maxWait
		var slept time.Duration
		_, slept, err = wait.ForSlept(ctx, t.backend, r, wait.Sleep, time.Now)
		if slept > 0 && err == nil {
			t.emit(srl.Event{Kind: srl.EventWaited, Key: r.Key, Wait: slept})
		}
	}
	var le *srl.LimitError
	if errors.As(err, &le) {
		t.emit(srl.Event{Kind: srl.EventLimited, Key: r.Key, Cause: le.Cause, Wait: le.RetryAfter})
	}
	return err
}

// learn parses what resp says about the server's budget and tells the
// backend, so every process sharing it learns too. It runs on a context
// detached from the caller's cancellation: a caller that stops reading
// right after the response must not make the fleet forget what the server
// said.
func (t *Transport) learn(ctx context.Context, base string, req *http.Request, resp *http.Response) dialect.Result {
	in := dialect.Input{Header: resp.Header, StatusCode: resp.StatusCode, Received: time.Now()}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden {
		in.Body = peekBody(resp, t.cfg.bodyPrefix)
	}
	said := dialect.Parse(in, t.cfg.headerMap)
	if said.Cached {
		return said
	}
	key := t.scopes.learn(base, req, said.Scope)
	for _, family := range said.Malformed {
		t.emit(srl.Event{Kind: srl.EventHeaderMalformed, Key: key, Dialect: family})
	}
	if !said.Found {
		return said
	}
	o := said.Observation
	if t.cfg.reserve > 0 && o.Limit > 0 {
		keep := int(float64(o.Limit)*t.cfg.reserve + 0.999999)
		o.Remaining = max(o.Remaining-keep, 0)
	}
	_ = t.backend.Observe(context.WithoutCancel(ctx), key, o)
	t.announce(key, said.Observation)
	return said
}

// announce reports what a response said: the quota (learned, when its
// limit is new for the key) and any block.
func (t *Transport) announce(key string, o srl.Observation) {
	if t.cfg.observer == nil {
		return
	}
	if o.Reset > 0 {
		q := srl.QuotaStatus{Known: true, Limit: o.Limit, Remaining: o.Remaining, ResetAfter: o.Reset}
		t.emit(srl.Event{Kind: srl.EventQuotaSeen, Key: key, Quota: q})
		if prev, loaded := t.learned.Swap(key, o.Limit); !loaded || prev.(int) != o.Limit {
			t.emit(srl.Event{Kind: srl.EventQuotaLearned, Key: key, Quota: q})
		}
	}
	if o.RetryAfter > 0 || o.Limited {
		t.emit(srl.Event{Kind: srl.EventBlocked, Key: key, Wait: o.RetryAfter})
	}
}

// retryDelay decides whether to send req again after this attempt, and how
// long to wait first: the policy's delay, or the server's Retry-After when
// longer. A wait past the max wait or the request's deadline means no
// retry: the caller gets the last response.
func (t *Transport) retryDelay(ctx context.Context, req *http.Request, resp *http.Response, err error, attempt int, said dialect.Result) (time.Duration, bool) {
	p := t.cfg.retry
	if attempt >= p.MaxRetries || ctx.Err() != nil || !p.retryable(resp, err) || !p.replayable(req) {
		return 0, false
	}
	delay := max(p.Delay(attempt+1), said.Observation.RetryAfter)
	if delay > t.cfg.maxWait {
		return 0, false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
		return 0, false
	}
	return delay, true
}

// Status returns the budget of host as every process sharing the backend
// sees it (the source documents' get_status), with the limits configured
// for that host. Status.Utilization tells how much is spent.
func (t *Transport) Status(ctx context.Context, host string) (srl.Status, error) {
	if err := t.cfg.err; err != nil {
		return srl.Status{}, err
	}
	fixed, defaults := t.limits(host)
	return t.backend.Peek(ctx, srl.Request{Key: host, Limits: fixed, DefaultLimits: defaults})
}

// Close releases the limiter the Transport built for WithRedis (it does not
// close the Redis client, nor a backend given with WithBackend) and closes
// idle connections. Requests after Close fail.
func (t *Transport) Close() error {
	t.CloseIdleConnections()
	if t.owned != nil {
		return t.owned.Close()
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

// peekBody reads up to n bytes of resp's body for the header parser and
// puts them back in front of the rest, so the caller still reads it all.
func peekBody(resp *http.Response, n int) []byte {
	if resp.Body == nil || resp.Body == http.NoBody || n <= 0 {
		return nil
	}
	prefix := make([]byte, n)
	read, err := io.ReadFull(resp.Body, prefix)
	prefix = prefix[:read]
	var rest io.Reader = resp.Body
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		// The body failed within the prefix: the caller sees the same error
		// after the bytes that did arrive.
		rest = errReader{err}
	}
	resp.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(prefix), rest), closer: resp.Body}
	return prefix
}

type replayBody struct {
	io.Reader
	closer io.Closer
}

func (b *replayBody) Close() error { return b.closer.Close() }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

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
