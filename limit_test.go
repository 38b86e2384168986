package smartratelimit

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLimitValidate(t *testing.T) {
	tests := []struct {
		l    Limit
		want error
	}{
		{PerSecond(10), nil},
		{PerMinute(60).WithBurst(10), nil},
		{Limit{Rate: 1, Period: time.Microsecond}, nil},
		{Limit{Rate: 1, Period: time.Second, Burst: 0}, nil},
		{Limit{Rate: 0, Period: time.Second}, ErrInvalidLimit},
		{Limit{Rate: -5, Period: time.Second}, ErrInvalidLimit},
		{Limit{Rate: 1, Period: 0}, ErrInvalidLimit},
		{Limit{Rate: 1, Period: 999 * time.Nanosecond}, ErrInvalidLimit},
		{Limit{Rate: 1, Period: MaxSpan + time.Hour}, ErrInvalidLimit},
		{Limit{Rate: 1, Period: time.Second, Burst: -1}, ErrInvalidLimit},
		{PerSecond(1_000_001), ErrInvalidLimit},
		{PerSecond(1_000_000), nil},
		{PerHour(1).WithBurst(1 << 40), ErrInvalidLimit},
		{Window(10, time.Second), nil},
		{Window(10, time.Second).WithBurst(1), nil},
		{Window(10, time.Second).WithBurst(2), ErrInvalidLimit},
		{Window(0, time.Second), ErrInvalidLimit},
		{Window(1, 0), ErrInvalidLimit},
		{Window(1, MaxSpan), nil},
		{Window(1, MaxSpan+1), ErrInvalidLimit},
		{Window(1_000_001, time.Second), ErrInvalidLimit},
		// A window has no interval, so no burst span: a whole period's
		// worth of events is fine.
		{Window(int(MaxSpan/time.Microsecond), MaxSpan), nil},
		{Limit{Rate: 1, Period: time.Second, Kind: 2}, ErrInvalidLimit},
		{Limit{Rate: 1, Period: time.Second, Kind: -1}, ErrInvalidLimit},
	}
	for _, tc := range tests {
		if err := tc.l.Validate(); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%+v.Validate() = %v, want %v", tc.l, err, tc.want)
		}
	}
}

func TestIntervalRoundsUp(t *testing.T) {
	tests := []struct {
		l    Limit
		want int64
	}{
		{PerSecond(10), 100_000},
		{Every(3, 10*time.Second), 3_333_334},
		{PerSecond(7), 142_858},
		{Limit{Rate: 1, Period: 1500 * time.Nanosecond}, 2},
		{PerMinute(60), 1_000_000},
	}
	for _, tc := range tests {
		if got := tc.l.IntervalMicros(); got != tc.want {
			t.Errorf("%v.IntervalMicros() = %d, want %d", tc.l, got, tc.want)
		}
		// Rounded up, Rate intervals never fit inside one Period.
		if int64(tc.l.Rate)*tc.l.IntervalMicros() < tc.l.PeriodMicros() {
			t.Errorf("%v: %d intervals of %dµs are shorter than the period", tc.l, tc.l.Rate, tc.l.IntervalMicros())
		}
	}
}

func TestLimitString(t *testing.T) {
	for l, want := range map[Limit]string{
		PerMinute(60):                           "60/1m0s",
		PerSecond(5).WithBurst(10):              "5/1s burst 10",
		{Rate: 3, Period: time.Hour}:            "3/1h0m0s",
		Window(10, time.Second):                 "10 per 1s window",
		Window(60, time.Minute):                 "60 per 1m0s window",
		{Rate: 2, Period: time.Second, Kind: 5}: "2/1s LimitKind(5)",
	} {
		if got := l.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestObservationNormalize(t *testing.T) {
	req := func(limit, remaining int, reset time.Duration) []QuotaObservation {
		return []QuotaObservation{{Unit: UnitRequests, Limit: limit, Remaining: remaining, Reset: reset}}
	}
	tests := []struct {
		name string
		in   Observation
		want Observation
		err  bool
	}{
		{"plain", Observation{Limit: 10, Remaining: 3, Reset: 30 * time.Second}, Observation{Quotas: req(10, 3, 30*time.Second)}, false},
		{"remaining above limit is clamped", Observation{Limit: 10, Remaining: 30, Reset: time.Second}, Observation{Quotas: req(10, 10, time.Second)}, false},
		{"no reset drops the quota part", Observation{Limit: 10, Remaining: 3, Window: time.Minute, RetryAfter: time.Second}, Observation{RetryAfter: time.Second}, false},
		{"sub-microsecond rounds up", Observation{RetryAfter: 1500 * time.Nanosecond}, Observation{RetryAfter: 2 * time.Microsecond}, false},
		{"a day is accepted", Observation{Remaining: 1, Reset: MaxHorizon}, Observation{Quotas: req(0, 1, MaxHorizon)}, false},
		{"slack is at most the reset", Observation{Remaining: 1, Reset: time.Second, ResetSlack: time.Hour}, Observation{Quotas: []QuotaObservation{{Unit: UnitRequests, Remaining: 1, Reset: time.Second, ResetSlack: time.Second}}}, false},
		{"units", Observation{Unit: UnitTokens, Remaining: 5, Reset: time.Second, Quotas: []QuotaObservation{{Remaining: 2, Reset: time.Minute}}},
			Observation{Quotas: []QuotaObservation{{Unit: UnitTokens, Remaining: 5, Reset: time.Second}, {Unit: UnitRequests, Remaining: 2, Reset: time.Minute}}}, false},
		{"a unit twice keeps the first", Observation{Remaining: 5, Reset: time.Second, Quotas: req(9, 9, time.Minute)}, Observation{Quotas: req(0, 5, time.Second)}, false},
		{"a bad unit", Observation{Unit: "Tokens!", Remaining: 1, Reset: time.Second}, Observation{}, true},
		{"negative remaining", Observation{Remaining: -1, Reset: time.Second}, Observation{}, true},
		{"negative window", Observation{Reset: time.Second, Window: -time.Second}, Observation{}, true},
		{"past a day", Observation{Reset: MaxHorizon + time.Second}, Observation{}, true},
		{"retry-after decades away", Observation{RetryAfter: 20 * 365 * 24 * time.Hour}, Observation{}, true},
		{"enormous remaining", Observation{Remaining: MaxCount + 1, Reset: time.Second}, Observation{}, true},
		{"a bad quota in the list", Observation{Quotas: []QuotaObservation{{Unit: UnitTokens, Remaining: -4, Reset: time.Second}}}, Observation{}, true},
	}
	for _, tc := range tests {
		got, err := tc.in.Normalize()
		if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrInvalidObservation)) {
			t.Errorf("%s: error %v, want error %v", tc.name, err, tc.err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if !(Observation{Limit: 5, Remaining: 5}).IsZero() || (Observation{Limited: true}).IsZero() || (Observation{Succeeded: true}).IsZero() {
		t.Error("IsZero: an observation without reset, retry, refusal or success stores nothing")
	}
}

func TestLimitError(t *testing.T) {
	var err error = &LimitError{Key: "api.github.com", RetryAfter: 3 * time.Second, Cause: CauseQuota}
	wrapped := fmt.Errorf("GET /: %w", err)
	var le *LimitError
	if !errors.Is(wrapped, ErrRateLimited) || !errors.As(wrapped, &le) || le.RetryAfter != 3*time.Second {
		t.Fatalf("errors.Is/As through a wrap failed for %v", wrapped)
	}
	if got, want := err.Error(), `smartratelimit: rate limited on "api.github.com" by quota; retry after 3s`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	ke := &KeyError{Key: "k", Err: fmt.Errorf("redislimit: %w", ErrWrongType)}
	if !errors.Is(ke, ErrWrongType) || ke.Error() != `redislimit: smartratelimit: key holds the wrong type [key "k"]` {
		t.Errorf("KeyError: %v", ke)
	}
}

func TestUtilization(t *testing.T) {
	tests := []struct {
		s    Status
		want float64
	}{
		{Status{}, 0},
		{Status{Limit: 100, Remaining: 100}, 0},
		{Status{Limit: 100, Remaining: 25}, 0.75},
		{Status{Limit: 100, Remaining: 0}, 1},
		{Status{Limit: 100, Remaining: 150}, 0},
		{Status{Limit: 100, Remaining: 100, BlockedFor: time.Second}, 1},
	}
	for _, tc := range tests {
		if got := tc.s.Utilization(); got != tc.want {
			t.Errorf("%+v.Utilization() = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestRequestValidate(t *testing.T) {
	r := Request{Key: "k", N: 5, Limits: []Limit{PerSecond(1).WithBurst(5)}}
	if err := r.Validate(); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	r.N = 6
	if err := r.Validate(); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("cost above burst: %v", err)
	}
	if err := r.ValidateStatus(); err != nil {
		t.Fatalf("status ignores the cost: %v", err)
	}
	r.MaxWait = MaxSpan + 1
	r.N = 1
	if err := r.Validate(); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("max wait past the span: %v", err)
	}
	// A window limit takes a cost up to its rate, whatever its Burst.
	w := Request{Key: "k", N: 10, DefaultLimits: []Limit{Window(10, time.Second)}}
	if err := w.Validate(); err != nil {
		t.Fatalf("a whole window at once: %v", err)
	}
	w.N = 11
	if err := w.Validate(); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "rate 10") {
		t.Fatalf("cost above a window's rate: %v", err)
	}
}

func TestLimitKind(t *testing.T) {
	tests := []struct {
		l     Limit
		kind  string
		burst int
	}{
		{PerSecond(10), "pacing", 1},
		{Limit{Rate: 10, Period: time.Second}, "pacing", 1},
		{PerSecond(10).WithBurst(4), "pacing", 4},
		{Window(10, time.Second), "window", 10},
		{Window(10, time.Second).WithBurst(1), "window", 10},
	}
	for _, tc := range tests {
		if got := tc.l.Kind.String(); got != tc.kind {
			t.Errorf("%v: kind %q, want %q", tc.l, got, tc.kind)
		}
		if got := tc.l.EffectiveBurst(); got != tc.burst {
			t.Errorf("%v: EffectiveBurst %d, want %d", tc.l, got, tc.burst)
		}
	}
	if Window(10, time.Second) == PerSecond(10) || Window(10, time.Second) != (Limit{Rate: 10, Period: time.Second, Kind: Windowed}) {
		t.Error("a window limit compares by its kind too")
	}
}
