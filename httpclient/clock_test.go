package httpclient

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// The estimate of how far into its Date's second a server was never runs
// ahead of the truth (an early window end draws a 429), and with many
// responses it comes within a few round trips of it.
func TestServerClockEstimateErrsLate(t *testing.T) {
	const offset = 3700 * time.Millisecond // local clock ahead of the server's
	// Seeded: the walk is the same every run, so a bound it misses is a
	// change in the estimate, never a draw of the dice.
	rng := rand.New(rand.NewPCG(7, 11))
	var c serverClocks
	local := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	worst := time.Duration(0)
	for i := 0; i < 2000; i++ {
		local = local.Add(time.Duration(rng.IntN(40)) * time.Millisecond)
		sent := local
		rtt := time.Duration(1+rng.IntN(5)) * time.Millisecond
		answered := sent.Add(rtt / 2).Add(-offset) // server time
		date := answered.Truncate(time.Second)
		recv := sent.Add(rtt)
		c.record("api", recv, date)
		got := c.into("api", sent, date)
		truth := answered.Sub(date)
		if got > truth {
			t.Fatalf("response %d: estimated %v into the second, the server was only %v in", i, got, truth)
		}
		if i > 100 {
			worst = max(worst, truth-got)
		}
		local = recv
	}
	if worst > 25*time.Millisecond {
		t.Fatalf("after 100 responses the estimate still lags the truth by up to %v", worst)
	}
	if got := c.into("other", local, local.Truncate(time.Second)); got != 0 {
		t.Fatalf("a host never seen: %v, want 0", got)
	}
}

func TestSharpenCutsOnlyWholeSecondResets(t *testing.T) {
	o := srl.Observation{Reset: 3 * time.Second, ResetSlack: time.Second, Quotas: []srl.QuotaObservation{
		{Unit: srl.UnitTokens, Reset: 2 * time.Second}, // relative: no slack, no cut
		{Unit: "content-bytes", Reset: 1500 * time.Millisecond, ResetSlack: time.Second},
	}}
	got := sharpen(o, 400*time.Millisecond)
	if got.Reset != 2600*time.Millisecond || got.Quotas[0].Reset != 2*time.Second || got.Quotas[1].Reset != 1100*time.Millisecond {
		t.Fatalf("sharpen: %+v", got)
	}
	if o.Quotas[1].Reset != 1500*time.Millisecond {
		t.Fatal("sharpen changed the caller's observation")
	}
}

// The per-host memories (the scopes learned, the announced limits, the
// server clocks) stay bounded for a million hosts.
func TestPerHostMemoryIsBounded(t *testing.T) {
	var sc scopes
	var clocks serverClocks
	now := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	req := httptest.NewRequest(http.MethodGet, "http://api.example.com/search/x", nil)
	for i := 0; i < 1_000_000; i++ {
		host := "h" + strconv.Itoa(i)
		sc.learn(host, req, "search")
		clocks.record(host, now, now.Truncate(time.Second))
	}
	if len(sc.m) > maxScopes || len(clocks.m) > maxLearned {
		t.Fatalf("%d scopes, %d clocks remembered; bounds %d, %d", len(sc.m), len(clocks.m), maxScopes, maxLearned)
	}
}
