// Package fakeapi is an HTTP API that enforces a fixed-window rate limit
// and advertises it in response headers, as third-party APIs do: the test
// server of the HTTP client's tests, the fleet measure and the demo.
package fakeapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server admits Limit requests per Window, counted in fixed windows that
// start with the first request; past it, it answers 429 with Retry-After.
// Every response carries X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset-After (seconds to the window's end, with decimals).
type Server struct {
	Limit  int
	Window time.Duration
	// Now is the server's clock; time.Now when nil.
	Now func() time.Time
	// Silent omits the rate-limit headers (a server that only says 429).
	Silent bool

	mu          sync.Mutex
	windowStart time.Time
	used        int
	served      []int // admitted per window, in order

	requests, ok, limited atomic.Int64
	firstResponse         atomic.Int64 // unix nanos when the first response was sent
	late429               atomic.Int64 // 429s to requests sent after it
}

// Counts are what the server saw.
type Counts struct {
	Requests, OK, Limited int64
	// LimitedAfterFirst counts 429s to requests that arrived after the
	// first response was sent: the ones a client that learns from headers
	// should have avoided.
	LimitedAfterFirst int64
}

// Windows returns how many requests each window admitted, oldest first.
func (s *Server) Windows() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.served...)
}

// Counts returns what the server saw so far.
func (s *Server) Counts() Counts {
	return Counts{Requests: s.requests.Load(), OK: s.ok.Load(), Limited: s.limited.Load(), LimitedAfterFirst: s.late429.Load()}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := s.now()
	s.requests.Add(1)
	s.mu.Lock()
	if s.windowStart.IsZero() || !arrived.Before(s.windowStart.Add(s.Window)) {
		s.windowStart, s.used = arrived, 0
		s.served = append(s.served, 0)
	}
	allowed := s.used < s.Limit
	if allowed {
		s.used++
		s.served[len(s.served)-1]++
	}
	remaining, resetAfter := s.Limit-s.used, s.windowStart.Add(s.Window).Sub(arrived)
	s.mu.Unlock()

	first := s.firstResponse.Load()
	defer s.firstResponse.CompareAndSwap(0, s.now().UnixNano())
	h := w.Header()
	h.Set("Date", arrived.UTC().Format(http.TimeFormat))
	if !s.Silent {
		h.Set("X-RateLimit-Limit", strconv.Itoa(s.Limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(resetAfter.Seconds(), 'f', 3, 64))
	}
	if !allowed {
		s.limited.Add(1)
		if first != 0 && arrived.UnixNano() > first {
			s.late429.Add(1)
		}
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(resetAfter.Seconds()))))
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":"rate limited"}`))
		return
	}
	s.ok.Add(1)
	_, _ = w.Write([]byte(`{"ok":true}`))
}
