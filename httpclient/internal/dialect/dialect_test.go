package dialect

import (
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// serverNow is the Date of every capture; received is the local clock,
// deliberately 5 minutes behind, which must change nothing.
var (
	serverNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	received  = serverNow.Add(-5 * time.Minute)
	dateHdr   = serverNow.Format(http.TimeFormat)
	epoch     = func(d time.Duration) string { return strconv.FormatInt(serverNow.Add(d).Unix(), 10) }
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseCaptures(t *testing.T) {
	runCases(t, []parseCase{
		{
			name: "GitHub core", status: 200,
			h:    hdr("Date", dateHdr, "x-ratelimit-limit", "5000", "x-ratelimit-remaining", "4987", "x-ratelimit-used", "13", "x-ratelimit-reset", epoch(37*time.Minute), "x-ratelimit-resource", "core"),
			want: srl.Observation{Limit: 5000, Remaining: 4987, Reset: 37*time.Minute + time.Second, ResetSlack: time.Second}, dialects: []string{FamilyGitHub, FamilyXRateLimit}, scope: "core",
		},
		{
			name: "GitHub primary limit spent, 403", status: 403,
			h:    hdr("Date", dateHdr, "X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", epoch(10*time.Minute), "X-RateLimit-Resource", "core"),
			body: `{"message":"API rate limit exceeded for 203.0.113.7."}`,
			want: srl.Observation{Limit: 60, Remaining: 0, Reset: 10*time.Minute + time.Second, ResetSlack: time.Second, Limited: true}, dialects: []string{FamilyGitHub, FamilyXRateLimit}, scope: "core",
		},
		{
			name: "GitHub secondary limit, 403 with no headers", status: 403,
			h:    hdr("Date", dateHdr),
			body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`,
			want: srl.Observation{RetryAfter: time.Minute, Limited: true}, dialects: []string{FamilyGitHub},
		},
		{
			name: "GitHub secondary limit with Retry-After", status: 429,
			h:    hdr("Date", dateHdr, "Retry-After", "90"),
			body: `{"message":"You have exceeded a secondary rate limit"}`,
			want: srl.Observation{RetryAfter: 90 * time.Second, Limited: true}, dialects: []string{FamilyRetryAfter, FamilyGitHub},
		},
		{
			name: "epoch reset already past is 'already reset', not a long wait", status: 200,
			h:    hdr("Date", dateHdr, "X-RateLimit-Limit", "5000", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", epoch(-2*time.Second)),
			want: srl.Observation{Limit: 5000, Remaining: 0}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "OpenAI durations", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimit-limit-requests", "500", "x-ratelimit-remaining-requests", "499", "x-ratelimit-reset-requests", "120ms",
				"x-ratelimit-limit-tokens", "30000", "x-ratelimit-remaining-tokens", "29900", "x-ratelimit-reset-tokens", "6m0s"),
			want: srl.Observation{Limit: 500, Remaining: 499, Reset: 120 * time.Millisecond, Quotas: []srl.QuotaObservation{
				{Unit: srl.UnitTokens, Limit: 30000, Remaining: 29900, Reset: 6 * time.Minute},
			}},
			dialects: []string{FamilyOpenAI},
		},
		{
			name: "Groq durations", status: 200,
			h:    hdr("x-ratelimit-limit-requests", "14400", "x-ratelimit-remaining-requests", "14370", "x-ratelimit-reset-requests", "2m59.56s"),
			want: srl.Observation{Limit: 14400, Remaining: 14370, Reset: 2*time.Minute + 59560*time.Millisecond}, dialects: []string{FamilyOpenAI},
		},
		{
			name: "OpenAI 429 with retry-after-ms", status: 429,
			h:        hdr("Date", dateHdr, "retry-after", "1", "retry-after-ms", "512", "x-ratelimit-limit-requests", "500", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "12ms"),
			want:     srl.Observation{Limit: 500, Remaining: 0, Reset: 12 * time.Millisecond, RetryAfter: 512 * time.Millisecond, Limited: true},
			dialects: []string{FamilyOpenAI, FamilyRetryAfter},
		},
		{
			name: "Azure OpenAI -1 values mean nothing", status: 200,
			h:    hdr("x-ratelimit-limit-requests", "-1", "x-ratelimit-remaining-requests", "-1", "x-ratelimit-reset-requests", "0"),
			want: srl.Observation{},
		},
		{
			name: "Anthropic RFC 3339", status: 200,
			h: hdr("Date", dateHdr, "anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "49",
				"anthropic-ratelimit-requests-reset", serverNow.Add(1200*time.Millisecond).Format(time.RFC3339Nano)),
			want: srl.Observation{Limit: 50, Remaining: 49, Reset: 1200 * time.Millisecond}, dialects: []string{FamilyAnthropic},
		},
		{
			name: "Discord reset-after and epoch with decimals", status: 200,
			// Discord's documented example, with the Date it implies.
			h: hdr("Date", time.Unix(1470172958, 0).UTC().Format(http.TimeFormat), "X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "4", "X-RateLimit-Reset", "1470173023.123",
				"X-RateLimit-Reset-After", "64.57", "X-RateLimit-Bucket", "abcd1234"),
			want: srl.Observation{Limit: 5, Remaining: 4, Reset: 64570 * time.Millisecond}, dialects: []string{FamilyDiscord}, scope: "abcd1234",
			date: time.Unix(1470172958, 0).UTC(),
		},
		{
			name: "Discord 429 with the float only in the body", status: 429,
			h:    hdr("Date", dateHdr),
			body: `{"message": "You are being rate limited.", "retry_after": 64.57, "global": false}`,
			want: srl.Observation{RetryAfter: 64570 * time.Millisecond, Limited: true}, dialects: []string{FamilyDiscord},
		},
		{
			name: "Shopify leaky bucket and a decimal Retry-After", status: 429,
			h:        hdr("X-Shopify-Shop-Api-Call-Limit", "32/40", "Retry-After", "2.0"),
			want:     srl.Observation{Limit: 40, Remaining: 8, Reset: 16 * time.Second, Window: 20 * time.Second, RetryAfter: 2 * time.Second, Limited: true},
			dialects: []string{FamilyShopify, FamilyRetryAfter},
		},
		{
			name: "a bucket no Shopify plan has, which would take days to drain", status: 200,
			h:    hdr("X-Shopify-Shop-Api-Call-Limit", "0/1099511627776"),
			want: srl.Observation{}, malformed: []string{FamilyShopify},
		},
		{
			name: "Sentry decimal Retry-After", status: 429,
			h:    hdr("Retry-After", "292.052427053"),
			want: srl.Observation{RetryAfter: 292052427053 * time.Nanosecond, Limited: true}, dialects: []string{FamilyRetryAfter},
		},
		{
			name: "Retry-After as an HTTP date is measured against Date", status: 503,
			h:    hdr("Date", dateHdr, "Retry-After", serverNow.Add(45*time.Second).Format(http.TimeFormat)),
			want: srl.Observation{RetryAfter: 46 * time.Second}, dialects: []string{FamilyRetryAfter},
		},
		{
			name: "Retry-After on a success is not a block", status: 200,
			h:    hdr("retry-after", "0", "X-RateLimit-Limit", "20", "X-RateLimit-Remaining", "19", "X-RateLimit-Reset", "10"),
			want: srl.Observation{Limit: 20, Remaining: 19, Reset: 10 * time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "IETF draft-08 with two policies and split lines", status: 200,
			h: hdr("Date", dateHdr, "RateLimit-Policy", `"burst";q=100;w=60`, "RateLimit-Policy", `"daily";q=1000;w=86400`,
				"RateLimit", `"burst";r=50;t=30`, "RateLimit", `"daily";r=12;t=36000`),
			want: srl.Observation{Limit: 1000, Remaining: 12, Reset: 10 * time.Hour, Window: 24 * time.Hour}, dialects: []string{FamilyIETF8},
		},
		{
			name: "IETF draft-08 with a token name (Cloudflare style, lenient)", status: 200,
			h:    hdr("Ratelimit", `default;r=50;t=30`, "Ratelimit-Policy", `default;q=1200;w=300`),
			want: srl.Observation{Limit: 1200, Remaining: 50, Reset: 30 * time.Second, Window: 5 * time.Minute}, dialects: []string{FamilyIETF8},
		},
		{
			name: "Atlassian Beta headers", status: 200,
			h:    hdr("Beta-Ratelimit-Policy", `"tenant-app-quota";q=100100;w=3600`, "Beta-Ratelimit", `"tenant-app-quota";r=17842;t=2107`),
			want: srl.Observation{Limit: 100100, Remaining: 17842, Reset: 2107 * time.Second, Window: time.Hour}, dialects: []string{FamilyIETF8},
		},
		{
			name: "IETF draft-07 dictionary", status: 200,
			h:    hdr("RateLimit", "limit=100, remaining=50, reset=5", "RateLimit-Policy", "100;w=10"),
			want: srl.Observation{Limit: 100, Remaining: 50, Reset: 5 * time.Second, Window: 10 * time.Second}, dialects: []string{FamilyIETF7},
		},
		{
			name: "IETF draft-06 separate fields (delta seconds)", status: 200,
			h:    hdr("RateLimit-Limit", "10", "RateLimit-Remaining", "1", "RateLimit-Reset", "7", "RateLimit-Policy", "10;w=1, 50;w=60"),
			want: srl.Observation{Limit: 10, Remaining: 1, Reset: 7 * time.Second, Window: time.Second}, dialects: []string{FamilyIETF6},
		},
		{
			name: "GitLab RateLimit-Reset as an epoch", status: 200,
			h:    hdr("Date", dateHdr, "RateLimit-Limit", "600", "RateLimit-Remaining", "598", "RateLimit-Reset", epoch(50*time.Second)),
			want: srl.Observation{Limit: 600, Remaining: 598, Reset: 51 * time.Second, ResetSlack: time.Second}, dialects: []string{FamilyIETF6},
		},
		{
			name: "Okta X-Rate-Limit-*", status: 200,
			h:    hdr("Date", dateHdr, "X-Rate-Limit-Limit", "1200", "X-Rate-Limit-Remaining", "1199", "X-Rate-Limit-Reset", epoch(60*time.Second)),
			want: srl.Observation{Limit: 1200, Remaining: 1199, Reset: 61 * time.Second, ResetSlack: time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "Reddit decimal remaining and used", status: 200,
			h:    hdr("X-Ratelimit-Used", "2", "X-Ratelimit-Remaining", "98.0", "X-Ratelimit-Reset", "436"),
			want: srl.Observation{Limit: 100, Remaining: 98, Reset: 436 * time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "Linear epoch milliseconds", status: 200,
			h:    hdr("Date", dateHdr, "X-RateLimit-Requests-Limit", "1500", "X-RateLimit-Limit", "1500", "X-RateLimit-Remaining", "1499", "X-RateLimit-Reset", strconv.FormatInt(serverNow.Add(3*time.Second).UnixMilli(), 10)),
			want: srl.Observation{Limit: 1500, Remaining: 1499, Reset: 3 * time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "Jira minute-precision ISO reset", status: 200,
			h:    hdr("Date", dateHdr, "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", serverNow.Add(2*time.Minute).Format("2006-01-02T15:04Z")),
			want: srl.Observation{Limit: 100, Remaining: 0, Reset: 3 * time.Minute, ResetSlack: time.Minute}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "Whoop list in the limit", status: 200,
			h:    hdr("X-RateLimit-Limit", "100, 100;window=60, 10000;window=86400", "X-RateLimit-Remaining", "97", "X-RateLimit-Reset", "3"),
			want: srl.Observation{Limit: 100, Remaining: 97, Reset: 3 * time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "custom header map takes precedence", status: 200,
			h:    hdr("X-MyAPI-Limit", "1000", "X-MyAPI-Remaining", "7", "X-MyAPI-Reset", "30", "X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "5", "X-RateLimit-Reset", "9"),
			m:    &Mapping{Limit: "X-MyAPI-Limit", Remaining: "X-MyAPI-Remaining", Reset: "X-MyAPI-Reset"},
			want: srl.Observation{Limit: 1000, Remaining: 7, Reset: 30 * time.Second}, dialects: []string{FamilyCustom},
		},
		{
			name: "garbage is malformed and ignored, the next family is used", status: 200,
			h:    hdr("RateLimit", "limit=banana", "X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "4", "X-RateLimit-Reset", "8"),
			want: srl.Observation{Limit: 10, Remaining: 4, Reset: 8 * time.Second}, dialects: []string{FamilyXRateLimit}, malformed: []string{FamilyIETF7},
		},
		{
			name: "negative remaining", status: 200,
			h:    hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "-1", "X-RateLimit-Reset", "8"),
			want: srl.Observation{}, malformed: []string{FamilyXRateLimit},
		},
		{
			name: "enormous reset", status: 200,
			h:    hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "999999999"),
			want: srl.Observation{}, malformed: []string{FamilyXRateLimit},
		},
		{
			name: "an epoch decades ago is not believed", status: 200,
			h:    hdr("Date", dateHdr, "X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1000000000"),
			want: srl.Observation{}, malformed: []string{FamilyXRateLimit},
		},
		{
			name: "enormous Retry-After", status: 429,
			h:    hdr("Retry-After", "99999999999"),
			want: srl.Observation{Limited: true}, malformed: []string{FamilyRetryAfter},
		},
		{
			name: "non-numeric Retry-After", status: 429,
			h:    hdr("Retry-After", "soon"),
			want: srl.Observation{Limited: true}, malformed: []string{FamilyRetryAfter},
		},
		{
			name: "a bare 429", status: 429,
			h:    hdr(),
			want: srl.Observation{Limited: true},
		},
		{
			name: "no rate-limit headers", status: 200,
			h:    hdr("Content-Type", "application/json"),
			want: srl.Observation{},
		},
	})
}

// obs shortens the expected observations of the tables.
type obs = srl.Observation

// parseCase is one response and what Parse must make of it.
type parseCase struct {
	name      string
	status    int
	h         http.Header
	body      string
	m         *Mapping
	want      srl.Observation
	dialects  []string
	malformed []string
	scope     string
	// date is the Observation's Date when the case's Date header is
	// neither dateHdr (serverNow) nor absent (received).
	date        time.Time
	shouldRetry *bool
}

// runCases parses each case's response, received by a pod whose clock is
// 5 minutes behind the server's, and compares the whole result.
func runCases(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkCase(t, tc)
		})
	}
}

func checkCase(t *testing.T, tc parseCase) {
	t.Helper()
	got := Parse(Input{Header: tc.h, StatusCode: tc.status, Body: []byte(tc.body), Received: received}, tc.m)
	want := tc.want
	switch {
	case !tc.date.IsZero():
		want.Date = tc.date
	case tc.h.Get("Date") == dateHdr:
		want.Date = serverNow
	case tc.h.Get("Date") == "":
		want.Date = received
	default:
		t.Fatalf("the case sends Date %q and must say what it means", tc.h.Get("Date"))
	}
	want.Succeeded = tc.status >= 200 && tc.status < 400
	want.Bare = len(tc.dialects) == 0 && !tc.want.Limited
	if !reflect.DeepEqual(got.Observation, want) {
		t.Errorf("observation\n got %+v\nwant %+v", got.Observation, want)
	}
	if !sameSet(got.Dialects, tc.dialects) || !sameSet(got.Malformed, tc.malformed) || got.Scope != tc.scope {
		t.Errorf("dialects %v malformed %v scope %q; want %v %v %q", got.Dialects, got.Malformed, got.Scope, tc.dialects, tc.malformed, tc.scope)
	}
	if !reflect.DeepEqual(got.ShouldRetry, tc.shouldRetry) {
		t.Errorf("ShouldRetry %v, want %v", fmtBool(got.ShouldRetry), fmtBool(tc.shouldRetry))
	}
	if _, err := got.Observation.Normalize(); err != nil {
		t.Errorf("the observation does not normalize: %v", err)
	}
	if wantFound := len(tc.dialects) > 0 || tc.want.Limited; got.Found != wantFound {
		t.Errorf("Found %v, want %v", got.Found, wantFound)
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "nil"
	}
	return strconv.FormatBool(*b)
}

func sameSet(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestMostCompleteFamilyWins: every family present is read, and each
// unit's quota comes from the one that says most (limit, remaining and
// reset, then remaining and reset), never from a malformed one; on a tie
// the more specific family wins.
func TestMostCompleteFamilyWins(t *testing.T) {
	runCases(t, []parseCase{
		{
			name: "tollbooth v7: a bare X-Rate-Limit-Limit beside a full RateLimit-*", status: 200,
			h:    hdr("X-Rate-Limit-Limit", "10.00", "X-Rate-Limit-Duration", "1", "RateLimit-Limit", "10", "RateLimit-Remaining", "9", "RateLimit-Reset", "1"),
			want: obs{Limit: 10, Remaining: 9, Reset: time.Second}, dialects: []string{FamilyIETF6},
		},
		{
			name: "remaining and reset beat a limit alone", status: 200,
			h:    hdr("X-RateLimit-Limit", "100", "RateLimit-Remaining", "5", "RateLimit-Reset", "30"),
			want: obs{Remaining: 5, Reset: 30 * time.Second}, dialects: []string{FamilyIETF6},
		},
		{
			name: "a full triple beats a more specific family without the limit", status: 200,
			h:    hdr("RateLimit", `"default";r=50;t=30`, "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "50", "X-RateLimit-Reset", "30"),
			want: obs{Limit: 100, Remaining: 50, Reset: 30 * time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "a malformed family is never chosen, however complete", status: 200,
			h:    hdr("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "-1", "X-RateLimit-Reset", "30", "RateLimit-Remaining", "5", "RateLimit-Reset", "30"),
			want: obs{Remaining: 5, Reset: 30 * time.Second}, dialects: []string{FamilyIETF6}, malformed: []string{FamilyXRateLimit},
		},
		{
			name: "a custom mapping is ranked like the others", status: 200,
			h:    hdr("X-MyAPI-Reset", "30", "X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "5", "X-RateLimit-Reset", "9"),
			m:    &Mapping{Reset: "X-MyAPI-Reset"},
			want: obs{Limit: 5, Remaining: 5, Reset: 9 * time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "a limit and a reset without remaining are not a spent quota", status: 200,
			h:    hdr("X-RateLimit-Limit", "100", "X-RateLimit-Reset", "30"),
			want: obs{Limit: 100}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "on a 429 they are: the refusal says when the quota refills", status: 429,
			h:    hdr("X-RateLimit-Limit", "100", "X-RateLimit-Reset", "30"),
			want: obs{Limit: 100, Reset: 30 * time.Second, Limited: true}, dialects: []string{FamilyXRateLimit},
		},
	})
}

// TestObservationFacts: the Observation carries the server's clock, the
// outcome, and whether the response said anything about the budget at
// all; the backend orders and probes by them.
func TestObservationFacts(t *testing.T) {
	runCases(t, []parseCase{
		{name: "a bare success", status: 200, h: hdr("Date", dateHdr, "Content-Type", "application/json"), want: obs{}},
		{name: "a bare success without Date", status: 200, h: hdr(), want: obs{}},
		{name: "a bare redirect", status: 301, h: hdr("Date", dateHdr, "Location", "/elsewhere"), want: obs{}},
		{name: "not modified", status: 304, h: hdr("Date", dateHdr), want: obs{}},
		{name: "a server error", status: 500, h: hdr("Date", dateHdr), want: obs{}},
		{name: "a bare refusal is not bare", status: 429, h: hdr("Date", dateHdr), want: obs{Limited: true}},
		{
			name: "a Retry-After is not bare", status: 503, h: hdr("Date", dateHdr, "Retry-After", "5"),
			want: obs{RetryAfter: 5 * time.Second}, dialects: []string{FamilyRetryAfter},
		},
		{
			name: "a quota on a success", status: 200, h: hdr("Date", dateHdr, "X-RateLimit-Remaining", "5", "X-RateLimit-Reset", "5"),
			want: obs{Remaining: 5, Reset: 5 * time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "only malformed headers teach nothing", status: 200, h: hdr("Date", dateHdr, "X-RateLimit-Remaining", "many"),
			want: obs{}, malformed: []string{FamilyXRateLimit},
		},
		{
			name: "an unparsable Date: the receive time stands in", status: 200, h: hdr("Date", "yesterday"),
			want: obs{}, date: received,
		},
		{
			name: "a Date in an ambiguous zone is not the server's clock", status: 200, h: hdr("Date", "Mon, 23 Nov 2026 07:00:00 EST"),
			want: obs{}, date: received,
		},
	})
}

// TestClockSkewChangesNothing: the same server answer read by a pod whose
// clock is right, 5 minutes behind, or an hour ahead gives one observation.
func TestClockSkewChangesNothing(t *testing.T) {
	h := hdr("Date", dateHdr, "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "3", "X-RateLimit-Reset", epoch(42*time.Second),
		"Retry-After", serverNow.Add(20*time.Second).Format(http.TimeFormat))
	var first srl.Observation
	for i, local := range []time.Time{serverNow, serverNow.Add(-5 * time.Minute), serverNow.Add(time.Hour)} {
		got := Parse(Input{Header: h, StatusCode: 429, Received: local}, nil).Observation
		if i == 0 {
			first = got
			if got.Reset != 43*time.Second || got.RetryAfter != 21*time.Second {
				t.Fatalf("in sync: %+v", got)
			}
		} else if !reflect.DeepEqual(got, first) {
			t.Fatalf("local clock %v off: %+v, in sync %+v", local.Sub(serverNow), got, first)
		}
	}
}

func TestCachedResponses(t *testing.T) {
	for _, h := range []http.Header{hdr("Age", "12"), hdr("X-From-Cache", "1")} {
		if !Parse(Input{Header: h, StatusCode: 200}, nil).Cached {
			t.Errorf("%v not seen as cached", h)
		}
	}
	for _, h := range []http.Header{hdr("Age", "0"), hdr(), hdr("X-From-Cache", "false")} {
		if Parse(Input{Header: h, StatusCode: 200}, nil).Cached {
			t.Errorf("%v seen as cached", h)
		}
	}
}

func TestStructuredFields(t *testing.T) {
	items, ok := parseSF(`"a";r=1;t=2, b;q=3;qu="requests";pk=:cHsdsRa894==:, (x y);z, ?1`, false)
	if !ok || len(items) != 4 || items[0].val.str != "a" || items[1].val.kind != sfToken || items[2].val.kind != sfInner || items[3].val.kind != sfBool {
		t.Fatalf("list: %+v, %v", items, ok)
	}
	if v, _ := items[1].param("pk"); v.kind != sfBytes || v.str != "cHsdsRa894==" {
		t.Fatalf("byte sequence parameter: %+v", v)
	}
	for _, bad := range []string{``, `"open`, `a,`, `a;`, `:unterminated`, `1.`, `12345678901234567`, "\"ctl\x01\""} {
		if _, ok := parseSF(bad, false); ok {
			t.Errorf("%q parsed as a list", bad)
		}
	}
	dict, ok := parseSF("limit=100, remaining=50, reset=5, flag", true)
	if !ok || len(dict) != 4 || dict[3].val.kind != sfBool {
		t.Fatalf("dictionary: %+v, %v", dict, ok)
	}
}

// TestParseIsDeterministic guards the map iteration of the Shopify
// family: several *-Api-Call-Limit headers are read in name order.
func TestParseIsDeterministic(t *testing.T) {
	h := hdr("X-Shopify-Shop-Api-Call-Limit", "10/40", "X-Gorgias-Account-Api-Call-Limit", "2/40")
	want := Parse(Input{Header: h, StatusCode: 200}, nil)
	for i := 0; i < 50; i++ {
		if got := Parse(Input{Header: h, StatusCode: 200}, nil); !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d: %+v, first %+v", i, got, want)
		}
	}
}
