package sqlitelimit

import (
	"path/filepath"
	"testing"

	"github.com/smartratelimit/smartratelimit/backendtest"
)

// open opens a store in a fresh file of t's, closed when t ends.
func open(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "rate_limits.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, clock *backendtest.Clock) backendtest.Harness {
		s := open(t, WithClock(clock.Now))
		return backendtest.Harness{Backend: s, TTL: s.ttl}
	})
}
