package wait

import (
	"context"
	"errors"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// script is a fake backend that answers from a list and records the
// requests it saw.
type script struct {
	answers []srl.Decision
	seen    []srl.Request
}

func (s *script) Acquire(_ context.Context, r srl.Request) (srl.Decision, error) {
	s.seen = append(s.seen, r)
	d := s.answers[0]
	if len(s.answers) > 1 {
		s.answers = s.answers[1:]
	}
	return d, nil
}

// fakeTime is a clock that only sleeping moves.
type fakeTime struct {
	now    time.Time
	sleeps []time.Duration
}

func (f *fakeTime) sleep(ctx context.Context, d time.Duration) error {
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

func (f *fakeTime) clock() time.Time { return f.now }

func TestReservationIsSleptExactly(t *testing.T) {
	b := &script{answers: []srl.Decision{{Allowed: true, Delay: 300 * time.Millisecond}}}
	ft := &fakeTime{now: time.Unix(0, 0)}
	d, err := For(context.Background(), b, srl.Request{Key: "k", N: 1}, ft.sleep, ft.clock)
	if err != nil || !d.Allowed {
		t.Fatalf("%+v, %v", d, err)
	}
	if len(ft.sleeps) != 1 || ft.sleeps[0] != 300*time.Millisecond {
		t.Fatalf("slept %v, want exactly the 300ms reservation", ft.sleeps)
	}
	if b.seen[0].MaxWait != MaxReservation {
		t.Fatalf("without a deadline the reservation bound is %v, want %v", b.seen[0].MaxWait, MaxReservation)
	}
}

func TestFailsFastPastTheDeadline(t *testing.T) {
	b := &script{answers: []srl.Decision{{RetryAfter: 5 * time.Second, Cause: srl.CauseQuota}}}
	ft := &fakeTime{now: time.Now()}
	ctx, cancel := context.WithDeadline(context.Background(), ft.now.Add(2*time.Second))
	defer cancel()
	_, err := For(ctx, b, srl.Request{Key: "k", N: 1}, ft.sleep, ft.clock)
	var le *srl.LimitError
	if !errors.As(err, &le) || !le.Deadline || le.RetryAfter != 5*time.Second || le.Cause != srl.CauseQuota {
		t.Fatalf("error %v, want a deadline LimitError", err)
	}
	if len(ft.sleeps) != 0 {
		t.Fatalf("slept %v before failing", ft.sleeps)
	}
	if b.seen[0].MaxWait > 2*time.Second {
		t.Fatalf("reserved up to %v past a 2s deadline", b.seen[0].MaxWait)
	}
}

func TestMaxWaitBoundsTheTotal(t *testing.T) {
	b := &script{answers: []srl.Decision{
		{RetryAfter: 400 * time.Millisecond, Cause: srl.CauseBlocked},
		{RetryAfter: 700 * time.Millisecond, Cause: srl.CauseBlocked},
	}}
	ft := &fakeTime{now: time.Unix(0, 0)}
	_, err := For(context.Background(), b, srl.Request{Key: "k", N: 1, MaxWait: time.Second}, ft.sleep, ft.clock)
	if !errors.Is(err, srl.ErrRateLimited) {
		t.Fatalf("error %v, want a refusal once the remaining max wait is too short", err)
	}
	// First pause: 400ms plus at most a tenth of it, never past the bound.
	if len(ft.sleeps) != 1 || ft.sleeps[0] < 400*time.Millisecond || ft.sleeps[0] > 440*time.Millisecond {
		t.Fatalf("slept %v", ft.sleeps)
	}
}

func TestBlockWaitsAreJittered(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		b := &script{answers: []srl.Decision{{RetryAfter: 10 * time.Second, Cause: srl.CauseBlocked}, {Allowed: true}}}
		ft := &fakeTime{now: time.Unix(0, 0)}
		if _, err := For(context.Background(), b, srl.Request{Key: "k", N: 1}, ft.sleep, ft.clock); err != nil {
			t.Fatal(err)
		}
		p := ft.sleeps[0]
		if p < 10*time.Second || p > 10*time.Second+MaxJitter {
			t.Fatalf("pause %v outside [10s, 10s+%v]", p, MaxJitter)
		}
		seen[p] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 fleet members woke at only %d distinct times", len(seen))
	}
}

// A spent quota is looked at again at least every QuotaPoll (jittered): a
// window may end before the time whole-second headers let us assume.
func TestQuotaWaitsPoll(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		b := &script{answers: []srl.Decision{{RetryAfter: 10 * time.Second, Cause: srl.CauseQuota}, {Allowed: true}}}
		ft := &fakeTime{now: time.Unix(0, 0)}
		if _, err := For(context.Background(), b, srl.Request{Key: "k", N: 1}, ft.sleep, ft.clock); err != nil {
			t.Fatal(err)
		}
		p := ft.sleeps[0]
		if p < QuotaPoll || p > QuotaPoll+QuotaPoll/4 {
			t.Fatalf("pause %v outside [%v, %v]", p, QuotaPoll, QuotaPoll+QuotaPoll/4)
		}
		seen[p] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 fleet members looked again at only %d distinct times", len(seen))
	}
}

func TestLimitRefusalSleepsUntilTheReservationFits(t *testing.T) {
	b := &script{answers: []srl.Decision{{RetryAfter: MaxReservation + 5*time.Second, Cause: srl.CauseLimit}, {Allowed: true, Delay: MaxReservation}}}
	ft := &fakeTime{now: time.Unix(0, 0)}
	if _, err := For(context.Background(), b, srl.Request{Key: "k", N: 1}, ft.sleep, ft.clock); err != nil {
		t.Fatal(err)
	}
	if len(ft.sleeps) != 2 || ft.sleeps[0] != 5*time.Second || ft.sleeps[1] != MaxReservation {
		t.Fatalf("slept %v, want 5s then the %v reservation", ft.sleeps, MaxReservation)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &script{answers: []srl.Decision{{Allowed: true}}}
	if _, err := For(ctx, b, srl.Request{Key: "k", N: 1}, Sleep, time.Now); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if len(b.seen) != 0 {
		t.Fatal("a cancelled wait still asked the backend")
	}
}

func TestSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
}

// TestReservationRechecksALaterQuota: a reservation granted while the
// server's quota was unknown is checked against the quota (and blocks)
// after the sleep, because the fleet may have learned them meanwhile.
func TestReservationRechecksALaterQuota(t *testing.T) {
	b := &script{answers: []srl.Decision{
		{Allowed: true, Delay: 200 * time.Millisecond},
		{RetryAfter: 2 * time.Second, Cause: srl.CauseQuota, Quota: srl.QuotaStatus{Known: true, Limit: 40}},
		{Allowed: true, Quota: srl.QuotaStatus{Known: true, Limit: 40, Remaining: 39}},
	}}
	ft := &fakeTime{now: time.Unix(0, 0)}
	r := srl.Request{Key: "k", N: 1, DefaultLimits: []srl.Limit{srl.PerSecond(5)}}
	d, err := For(context.Background(), b, r, ft.sleep, ft.clock)
	if err != nil || !d.Allowed || !d.Quota.Known {
		t.Fatalf("%+v, %v", d, err)
	}
	if len(b.seen) != 3 || len(b.seen[1].DefaultLimits) != 0 || len(b.seen[2].Limits) != 0 {
		t.Fatalf("requests %+v; after the reservation only the quota may be checked, not the limits again", b.seen)
	}
	if ft.sleeps[0] != 200*time.Millisecond || ft.sleeps[1] < QuotaPoll {
		t.Fatalf("slept %v", ft.sleeps)
	}

	// A reservation that already spent from a known quota is final.
	b = &script{answers: []srl.Decision{{Allowed: true, Delay: time.Second, Quota: srl.QuotaStatus{Known: true, Limit: 40, Remaining: 3}}}}
	if _, err := For(context.Background(), b, r, ft.sleep, ft.clock); err != nil || len(b.seen) != 1 {
		t.Fatalf("a reservation that spent the quota was checked again: %d calls, %v", len(b.seen), err)
	}
}

// A refusal whose next look would come after the bound fails at once with
// Deadline set, instead of sleeping into the deadline and ending with the
// context's error.
func TestPollPastTheBoundFailsFast(t *testing.T) {
	b := &script{answers: []srl.Decision{{RetryAfter: 100 * time.Millisecond, Cause: srl.CauseQuota}}}
	ft := &fakeTime{now: time.Unix(0, 0)}
	_, err := For(context.Background(), b, srl.Request{Key: "k", N: 1, MaxWait: 120 * time.Millisecond}, ft.sleep, ft.clock)
	var le *srl.LimitError
	if !errors.As(err, &le) || !le.Deadline || len(ft.sleeps) != 0 {
		t.Fatalf("%v after sleeping %v; want a fail-fast LimitError", err, ft.sleeps)
	}
}
