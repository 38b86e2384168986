package serverlog

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)

func at(ms int, status int) Record {
	t := t0.Add(time.Duration(ms) * time.Millisecond)
	return Record{Arrived: t, Done: t.Add(time.Millisecond), Status: status, Admitted: status == http.StatusOK}
}

func counts(ws []Window) []int {
	out := make([]int, len(ws))
	for i, w := range ws {
		out[i] = w.Admitted
	}
	return out
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A late-opened window counts as lost budget over the span, not in the
// windows themselves; so does the time before the next window opens.
func TestExpiringLeavesGaps(t *testing.T) {
	recs := []Record{at(0, 200), at(500, 200), at(1000, 200), at(1001, 200), at(2500, 200), at(4200, 200)}
	s := Summarize(recs, Expiring(time.Second), t0, t0.Add(5*time.Second), 2, time.Second)
	// [0 1000] holds the request at its expiry instant; then [1001 2001],
	// [2500 3500] and [4200 5200], which ends after the run.
	if got := counts(s.Windows); !equal(got, []int{3, 1, 1, 1}) {
		t.Fatalf("windows %v, want [3 1 1 1]", got)
	}
	if len(s.Full) != 2 || s.FullUsed != 2 || s.FullBudget != 4 {
		t.Fatalf("full %v used %d of %d", s.Full, s.FullUsed, s.FullBudget)
	}
	// From the end of w0 (1000) to the opening of w3 (4200).
	if s.SpanBudget != 2*3.2 || s.SpanUsed != 2 {
		t.Fatalf("span used %d of %v, want 2 of 6.4", s.SpanUsed, s.SpanBudget)
	}
}

// A fleet that stops sending leaves empty windows to the end of the run,
// not none.
func TestExpiringFillsToTheEnd(t *testing.T) {
	recs := []Record{at(0, 200), at(10, 200), at(1500, 200)}
	s := Summarize(recs, Expiring(time.Second), t0, t0.Add(5*time.Second), 2, time.Second)
	if got := counts(s.Windows); !equal(got, []int{2, 1, 0, 0, 0}) || !s.Windows[4].Unopened {
		t.Fatalf("windows %v (%+v), want [2 1 0 0 0], the last three unopened", got, s.Windows)
	}
	// w1 [1500 2500] .. w3 [3500 4500] are full; w4 ends at 5500.
	if len(s.Full) != 3 || s.FullUsed != 1 || len(s.Under(0.9)) != 3 {
		t.Fatalf("full %v used %d, under %v", s.Full, s.FullUsed, s.Under(0.9))
	}
}

// A grid window with no request at all is a full window that admitted
// nothing; the first, partial one is never judged.
func TestAlignedCountsEmptyWindows(t *testing.T) {
	recs := []Record{at(300, 200), at(1300, 200), at(1400, 429), at(3300, 200)}
	s := Summarize(recs, Aligned(time.Second, 250*time.Millisecond), t0, t0.Add(4500*time.Millisecond), 1, time.Second)
	if got := counts(s.Windows); !equal(got, []int{1, 1, 0, 1, 0}) {
		t.Fatalf("windows %v, want [1 1 0 1 0] (windows start at .25, to the run's end)", got)
	}
	// w0 [+0.25 +1.25] is the first; w1..w3 end by +4.25, w4 after +4.5.
	if len(s.Full) != 3 || s.FullUsed != 2 || len(s.Under(0.9)) != 1 {
		t.Fatalf("full %v used %d, under %v", s.Full, s.FullUsed, s.Under(0.9))
	}
}

func TestFromFirstAdmittedAndLateLimits(t *testing.T) {
	recs := []Record{at(0, 429), at(100, 200), at(101, 429), at(1100, 200), at(2150, 200)}
	s := Summarize(recs, FromFirstAdmitted(time.Second), t0, t0.Add(3*time.Second), 1, time.Second)
	if got := counts(s.Windows); !equal(got, []int{1, 1, 1}) {
		t.Fatalf("windows %v", got)
	}
	if s.LimitedAfterFirst != 1 || s.Limited != 2 {
		t.Fatalf("429s %d, after the first response %d; want 2 and 1", s.Limited, s.LimitedAfterFirst)
	}
}

func TestWrapRecordsStatusAndAdmission(t *testing.T) {
	var l Log
	deny := false
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", "1")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("RateLimit-Limit", "5")
		if deny {
			w.Header().Set("Retry-After", "7")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		App.ServeHTTP(w, r)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	deny = true
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	recs := l.Records()
	if len(recs) != 2 || !recs[0].Admitted || recs[0].Status != 200 || recs[1].Admitted || recs[1].Status != 429 {
		t.Fatalf("records %+v", recs)
	}
	if s, ok := l.Sample(429); !ok || s.Header.Get("X-Test") != "1" || s.Body != "slow down\n" {
		t.Fatalf("429 sample %+v", s)
	}
	if want := "Ratelimit-Limit=5 Retry-After=7 X-Ratelimit-Remaining=0"; recs[1].Told != want {
		t.Fatalf("the refusal told %q, want %q", recs[1].Told, want)
	}
}
