package httpclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/redislimit"
	"github.com/smartratelimit/smartratelimit/storage"
)

func TestWithStorage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "10")
		w.Header().Set("X-RateLimit-Remaining", "7")
		w.Header().Set("X-RateLimit-Reset", "60")
	}))
	defer srv.Close()
	mr := miniredis.RunT(t)

	for _, tc := range []struct {
		url  string
		want func(any) bool
	}{
		{"memory://", func(b any) bool { _, ok := b.(*fallback.Store); return ok }},
		{"redis://" + mr.Addr() + "/0", func(b any) bool { _, ok := b.(*redislimit.Limiter); return ok }},
	} {
		tr := NewTransport(nil, WithStorage(tc.url))
		if !tc.want(tr.backend) {
			t.Fatalf("%s: backend %T", tc.url, tr.backend)
		}
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		_ = resp.Body.Close()
		st, err := tr.Status(context.Background(), srv.URL)
		if err != nil || st.Quota.Remaining != 7 {
			t.Fatalf("%s: the response was not learned: %+v %v", tc.url, st, err)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		if l, ok := tr.backend.(*redislimit.Limiter); ok {
			if _, err := l.Allow(context.Background(), "k"); err == nil {
				t.Fatal("Close did not close the limiter WithStorage opened")
			}
		}
	}
	if len(mr.Keys()) == 0 {
		t.Fatal("redis:// stored nothing in Redis")
	}
}

func TestWithStorageErrors(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"", "empty storage URL"},
		{"redis://u:hunter2@[::1", "bad URL"},
		{"sqlite:///rate_limits.db", `import _ "github.com/smartratelimit/smartratelimit/sqlitelimit"`},
	} {
		c := New(WithStorage(tc.url))
		_, err := c.Get("http://127.0.0.1:1/")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error %v, want one saying %q", tc.url, err, tc.want)
		}
		if tc.url == "sqlite:///rate_limits.db" && !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("error %v does not wrap storage.ErrUnavailable", err)
		}
		_ = TransportOf(c).Close()
	}
}
