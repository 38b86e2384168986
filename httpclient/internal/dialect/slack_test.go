package dialect

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestResetSlack: an absolute reset written in whole seconds (or Jira's
// minutes), measured against a Date in whole seconds, may be up to one
// such unit early; the fleet must not roll over into the old, spent
// window, so the resolution is added to Reset and reported as its slack.
// Relative and sub-second forms get none.
func TestResetSlack(t *testing.T) {
	xrl := func(reset string) http.Header {
		return hdr("Date", dateHdr, "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", reset)
	}
	quota := func(reset, slack time.Duration) obs {
		return obs{Limit: 100, Remaining: 0, Reset: reset, ResetSlack: slack}
	}
	runCases(t, []parseCase{
		{
			name: "epoch seconds", status: 200, h: xrl(epoch(30 * time.Second)),
			want: quota(31*time.Second, time.Second), dialects: []string{FamilyXRateLimit},
		},
		{
			name: "epoch seconds equal to Date: the reset may still be ahead", status: 200, h: xrl(epoch(0)),
			want: quota(time.Second, time.Second), dialects: []string{FamilyXRateLimit},
		},
		{
			name: "epoch seconds a second before Date: reset for sure", status: 200, h: xrl(epoch(-time.Second)),
			want: obs{Limit: 100, Remaining: 0}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "epoch seconds with a fraction (Discord)", status: 200, h: xrl(epoch(30*time.Second) + ".250"),
			want: quota(30250*time.Millisecond, 0), dialects: []string{FamilyXRateLimit},
		},
		{
			name: "epoch milliseconds (Linear)", status: 200, h: xrl(strconv.FormatInt(serverNow.Add(30*time.Second).UnixMilli(), 10)),
			want: quota(30*time.Second, 0), dialects: []string{FamilyXRateLimit},
		},
		{
			name: "an HTTP date (Vimeo)", status: 200, h: xrl(serverNow.Add(30 * time.Second).Format(http.TimeFormat)),
			want: quota(31*time.Second, time.Second), dialects: []string{FamilyXRateLimit},
		},
		{
			name: "RFC 3339 to the second (Rachio)", status: 200, h: xrl(serverNow.Add(30 * time.Second).Format(time.RFC3339)),
			want: quota(31*time.Second, time.Second), dialects: []string{FamilyXRateLimit},
		},
		{
			name: "RFC 3339 with a fraction", status: 200, h: xrl(serverNow.Add(30500 * time.Millisecond).Format(time.RFC3339Nano)),
			want: quota(30500*time.Millisecond, 0), dialects: []string{FamilyXRateLimit},
		},
		{
			name: "Jira's minute", status: 200, h: xrl(serverNow.Add(2 * time.Minute).Format("2006-01-02T15:04Z")),
			want: quota(3*time.Minute, time.Minute), dialects: []string{FamilyXRateLimit},
		},
		{
			name: "Jira's minute, written in the minute Date is in", status: 200,
			h:    hdr("Date", serverNow.Add(30*time.Second).Format(http.TimeFormat), "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", serverNow.Format("2006-01-02T15:04Z")),
			want: quota(30*time.Second, 30*time.Second), dialects: []string{FamilyXRateLimit}, date: serverNow.Add(30 * time.Second),
		},
		{
			name: "seconds from now", status: 200, h: xrl("30"),
			want: quota(30*time.Second, 0), dialects: []string{FamilyXRateLimit},
		},
		{
			name: "Anthropic's RFC 3339", status: 200,
			h: hdr("Date", dateHdr, "anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "0",
				"anthropic-ratelimit-requests-reset", serverNow.Add(59*time.Second).Format(time.RFC3339)),
			want: obs{Limit: 50, Remaining: 0, Reset: time.Minute, ResetSlack: time.Second}, dialects: []string{FamilyAnthropic},
		},
		{
			name: "OpenAI's Go duration", status: 200,
			h:    hdr("Date", dateHdr, "x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "1s"),
			want: obs{Limit: 60, Remaining: 0, Reset: time.Second}, dialects: []string{FamilyOpenAI},
		},
		{
			name: "IETF t", status: 200,
			h:    hdr("Date", dateHdr, "RateLimit", `"default";r=0;t=30`),
			want: obs{Reset: 30 * time.Second}, dialects: []string{FamilyIETF8},
		},
		{
			name: "Discord's reset-after", status: 200,
			h:    hdr("Date", dateHdr, "X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset-After", "30"),
			want: obs{Limit: 5, Remaining: 0, Reset: 30 * time.Second}, dialects: []string{FamilyDiscord},
		},
		{
			name: "a Retry-After date waits out its second too", status: 429,
			h:    hdr("Date", dateHdr, "Retry-After", serverNow.Add(30*time.Second).Format(http.TimeFormat)),
			want: obs{RetryAfter: 31 * time.Second, Limited: true}, dialects: []string{FamilyRetryAfter},
		},
	})
}
