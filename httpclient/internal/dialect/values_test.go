package dialect

import (
	"net/http"
	"testing"
	"time"
)

// TestHTTPNumbers: counts and delays are ASCII digits, with a fraction
// only where a dialect writes one. strconv reads much more (signs,
// exponents, hexadecimal floats, Inf), and so did this parser.
func TestHTTPNumbers(t *testing.T) {
	checkCount := func(t *testing.T, read func(string) (int, bool), in string, want int, wantOK bool) {
		t.Helper()
		if got, ok := read(in); ok != wantOK || got != want {
			t.Errorf("%q: %d, %v; want %d, %v", in, got, ok, want, wantOK)
		}
	}
	for _, tc := range []struct {
		in       string
		want     int
		ok       bool
		floorOK  bool // countFloor's verdict, where it differs
		floorVal int
	}{
		{in: "5000", want: 5000, ok: true},
		{in: " 42\t", want: 42, ok: true},
		{in: "007", want: 7, ok: true},
		{in: "98.0", floorOK: true, floorVal: 98},
		{in: "10.00", floorOK: true, floorVal: 10},
		{in: "9.99", floorOK: true, floorVal: 9},
		{in: "1099511627776", want: 1 << 40, ok: true},
		{in: "1099511627777"},
		{in: "0x1p4"}, {in: "0x10"}, {in: "1_000"}, {in: "+5"}, {in: "-1"}, {in: "1e3"},
		{in: "Inf"}, {in: "NaN"}, {in: "infinity"}, {in: ""}, {in: "."}, {in: ".5"}, {in: "5."},
		{in: "1.2.3"}, {in: "5 5"}, {in: "\u00a05"}, {in: "٣"}, {in: "99999999999999999999"},
	} {
		checkCount(t, count, tc.in, tc.want, tc.ok)
		if tc.floorOK {
			checkCount(t, countFloor, tc.in, tc.floorVal, true)
		} else {
			checkCount(t, countFloor, tc.in, tc.want, tc.ok)
		}
	}

	checkSeconds := func(t *testing.T, in string, want time.Duration, wantOK bool) {
		t.Helper()
		if got, ok := seconds(in); ok != wantOK || got != want {
			t.Errorf("seconds(%q) = %v, %v; want %v, %v", in, got, ok, want, wantOK)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90", 90 * time.Second, true},
		{"2.0", 2 * time.Second, true},
		{"292.052427053", 292052427053 * time.Nanosecond, true},
		{"0.0000000001", time.Nanosecond, true}, // rounded up, never down
		{"0.9999999999", time.Second, true},
		{"86400", 24 * time.Hour, true},
		{"86400.000000001", 0, false},
		{"86401", 0, false},
		{"18446744074", 0, false},
		{"1e3", 0, false}, {"+5", 0, false}, {"-5", 0, false}, {"0x1p4", 0, false},
		{"Inf", 0, false}, {"NaN", 0, false}, {"1_0", 0, false}, {"5s", 0, false},
	} {
		checkSeconds(t, tc.in, tc.want, tc.ok)
	}
}

// TestNumbersInResponses: the same rule seen through Parse, on the
// families that used to read strconv syntax.
func TestNumbersInResponses(t *testing.T) {
	runCases(t, []parseCase{
		{
			name: "a hexadecimal float is not a remaining count", status: 200,
			h:    hdr("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "0x1p4", "X-RateLimit-Reset", "30"),
			want: obs{}, malformed: []string{FamilyXRateLimit},
		},
		{
			name: "an exponent is not a limit", status: 200,
			h:    hdr("X-RateLimit-Limit", "1e3", "X-RateLimit-Remaining", "5", "X-RateLimit-Reset", "30"),
			want: obs{}, malformed: []string{FamilyXRateLimit},
		},
		{
			name: "a signed reset", status: 200,
			h:    hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "5", "X-RateLimit-Reset", "+30"),
			want: obs{}, malformed: []string{FamilyXRateLimit},
		},
		{
			name: "an exponent in Retry-After", status: 429,
			h:    hdr("Retry-After", "1e3"),
			want: obs{Limited: true}, malformed: []string{FamilyRetryAfter},
		},
		{
			name: "Inf in retry-after-ms", status: 429,
			h:    hdr("Retry-After-Ms", "Inf", "Retry-After", "1"),
			want: obs{Limited: true}, malformed: []string{FamilyRetryAfter},
		},
		{
			name: "a decimal in an OpenAI count (the dialect writes integers)", status: 200,
			h:    hdr("x-ratelimit-limit-requests", "500.0", "x-ratelimit-remaining-requests", "499", "x-ratelimit-reset-requests", "1s"),
			want: obs{}, malformed: []string{FamilyOpenAI},
		},
		{
			name: "a signed Go duration", status: 200,
			h:    hdr("x-ratelimit-limit-requests", "500", "x-ratelimit-remaining-requests", "499", "x-ratelimit-reset-requests", "+1s"),
			want: obs{}, malformed: []string{FamilyOpenAI},
		},
		{
			name: "Discord's body in exponent notation", status: 429,
			h:    hdr(),
			body: `{"retry_after": 6.457e1, "global": false}`,
			want: obs{Limited: true},
		},
		{
			name: "Discord's body cut inside the number", status: 429,
			h:    hdr(),
			body: `{"message": "You are being rate limited.", "retry_after": 64`,
			want: obs{Limited: true},
		},
		{
			name: "tollbooth's decimal limit is floored", status: 200,
			h:    hdr("X-Rate-Limit-Limit", "10.00", "X-Rate-Limit-Remaining", "9.00", "X-Rate-Limit-Reset", "1"),
			want: obs{Limit: 10, Remaining: 9, Reset: time.Second}, dialects: []string{FamilyXRateLimit},
		},
	})
}

// TestHTTPDates: every date form servers really send is read, in its
// zone; a zone name that could mean several offsets is not a date.
func TestHTTPDates(t *testing.T) {
	want := time.Date(2026, 12, 1, 20, 25, 2, 0, time.UTC)
	check := func(t *testing.T, in string, ok bool) {
		t.Helper()
		got, gotOK := httpDate(in)
		if gotOK != ok || ok && !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v, %v", in, got, gotOK, want, ok)
		}
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"Tue, 01 Dec 2026 20:25:02 GMT", true},   // IMF-fixdate
		{"Tue, 01 Dec 2026 20:25:02 UTC", true},   // Go's time.RFC1123 in UTC (go-limiter's httplimit)
		{"Tue, 01 Dec 2026 20:25:02 UT", true},    // RFC 5322
		{"Tue, 01 Dec 2026 20:25:02 Z", true},     // RFC 5322 military UTC
		{"Tue, 01 Dec 2026 20:25:02 +0000", true}, // time.RFC1123Z
		{"Tue, 01 Dec 2026 21:25:02 +0100", true},
		{"Tue, 01 Dec 2026 15:25:02 -0500", true},
		{"Tue, 01 Dec 2026 21:25:02 +01:00", true},
		{"Tue, 1 Dec 2026 20:25:02 GMT", true}, // RFC 5322 one-digit day
		{"01 Dec 2026 20:25:02 GMT", true},     // RFC 5322 without day name
		{"Tuesday, 01-Dec-26 20:25:02 GMT", true},
		{"Tue Dec  1 20:25:02 2026", true},                                           // asctime
		{"Tue Dec 01 2026 21:25:02 GMT+0100 (Central European Standard Time)", true}, // JavaScript (lemlist)
		{"Tue, 01 Dec 2026 15:25:02 EST", false},
		{"Tue, 01 Dec 2026 21:25:02 CET", false},
		{"Tue, 01 Dec 2026 12:25:02 PST", false},
		{"Tue, 01 Dec 2026 20:25:02 A", false}, // military zones other than Z had their signs wrong
		{"Tue, 01 Dec 2026 20:25:02", false},
		{"Tue, 01 Dec 2026 20:25:02 +2400", false},
		{"Tue, 01 Dec 2026 20:25:02 +0060", false},
		{"Tue, 01 Dec 2026 20:25:02.5 GMT", false},
		{"Tue, 01 Dec 2026 24:25:02 GMT", false},
		{"Tue Dec 01 2026 21:25:02 GMT+0100 (unterminated", false},
		{"2026-12-01T20:25:02Z", false}, // RFC 3339 is read by the resets, not as an HTTP date
		{"", false},
	} {
		check(t, tc.in, tc.ok)
	}
}

// TestDatesInResponses: dates in every field that carries one.
func TestDatesInResponses(t *testing.T) {
	// go-limiter's httplimit writes its reset, and on a refusal its
	// Retry-After, with time.RFC1123 in UTC; net/http writes Date.
	limiterNow := time.Date(2026, 12, 1, 20, 24, 32, 0, time.UTC)
	limiterDate := limiterNow.Format(http.TimeFormat)
	limiterReset := limiterNow.Add(30 * time.Second).Format(time.RFC1123)
	runCases(t, []parseCase{
		{
			name: "go-limiter httplimit, allowed", status: 200,
			h:    hdr("Date", limiterDate, "X-Ratelimit-Limit", "10", "X-Ratelimit-Remaining", "9", "X-Ratelimit-Reset", limiterReset),
			want: obs{Limit: 10, Remaining: 9, Reset: 31 * time.Second, ResetSlack: time.Second}, dialects: []string{FamilyXRateLimit}, date: limiterNow,
		},
		{
			name: "go-limiter httplimit, refused", status: 429,
			h:    hdr("Date", limiterDate, "X-Ratelimit-Limit", "10", "X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", limiterReset, "Retry-After", limiterReset),
			want: obs{Limit: 10, Remaining: 0, Reset: 31 * time.Second, ResetSlack: time.Second, RetryAfter: 31 * time.Second, Limited: true}, dialects: []string{FamilyXRateLimit, FamilyRetryAfter},
			date: limiterNow,
		},
		{
			name: "a numeric zone (time.RFC1123Z)", status: 503,
			h:    hdr("Date", dateHdr, "Retry-After", serverNow.Add(45*time.Second).In(time.FixedZone("", 3600)).Format(time.RFC1123Z)),
			want: obs{RetryAfter: 46 * time.Second}, dialects: []string{FamilyRetryAfter},
		},
		{
			name: "RFC 850", status: 503,
			h:    hdr("Date", dateHdr, "Retry-After", serverNow.Add(45*time.Second).Format(time.RFC850)),
			want: obs{RetryAfter: 46 * time.Second}, dialects: []string{FamilyRetryAfter},
		},
		{
			name: "asctime", status: 503,
			h:    hdr("Date", dateHdr, "Retry-After", serverNow.Add(45*time.Second).Format(time.ANSIC)),
			want: obs{RetryAfter: 46 * time.Second}, dialects: []string{FamilyRetryAfter},
		},
		{
			name: "lemlist's JavaScript date", status: 200,
			h: hdr("Date", dateHdr, "X-RateLimit-Limit", "20", "X-RateLimit-Remaining", "0",
				"X-RateLimit-Reset", "Mon Nov 23 2026 13:00:40 GMT+0100 (Central European Standard Time)"),
			want: obs{Limit: 20, Remaining: 0, Reset: 41 * time.Second, ResetSlack: time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "a Date in UTC rather than GMT still measures the reset", status: 200,
			h:    hdr("Date", serverNow.Format(time.RFC1123), "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "3", "X-RateLimit-Reset", epoch(42*time.Second)),
			want: obs{Limit: 100, Remaining: 3, Reset: 43 * time.Second, ResetSlack: time.Second}, dialects: []string{FamilyXRateLimit}, date: serverNow,
		},
		{
			name: "an ambiguous zone name is not a date", status: 503,
			h:    hdr("Date", dateHdr, "Retry-After", "Mon, 23 Nov 2026 07:00:45 EST"),
			want: obs{}, malformed: []string{FamilyRetryAfter},
		},
		{
			name: "a reset in an ambiguous zone", status: 200,
			h:    hdr("Date", dateHdr, "X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "Mon, 23 Nov 2026 13:00:40 CET"),
			want: obs{}, malformed: []string{FamilyXRateLimit},
		},
	})
}
