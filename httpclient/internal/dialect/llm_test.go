package dialect

import (
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// quotas shortens the expected quotas of other units.
type quotas = []srl.QuotaObservation

// TestOpenAI: OpenAI, Azure OpenAI and Groq, as captured.
func TestOpenAI(t *testing.T) {
	runCases(t, []parseCase{
		{
			name: "OpenAI, every response", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimit-limit-requests", "60", "x-ratelimit-limit-tokens", "150000",
				"x-ratelimit-remaining-requests", "59", "x-ratelimit-remaining-tokens", "149984",
				"x-ratelimit-reset-requests", "1s", "x-ratelimit-reset-tokens", "6m0s"),
			want: obs{Limit: 60, Remaining: 59, Reset: time.Second, Quotas: quotas{
				{Unit: srl.UnitTokens, Limit: 150000, Remaining: 149984, Reset: 6 * time.Minute},
			}},
			dialects: []string{FamilyOpenAI},
		},
		{
			name: "OpenAI durations with fractions, and a suffixed twin that is not read", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimit-limit-requests", "10000", "x-ratelimit-remaining-requests", "9999", "x-ratelimit-reset-requests", "1.532s",
				"x-ratelimit-limit-tokens", "2000000", "x-ratelimit-remaining-tokens", "1999000", "x-ratelimit-reset-tokens", "16m17.764s",
				"x-ratelimit-limit-tokens_usage_based", "40000", "x-ratelimit-remaining-tokens_usage_based", "0", "x-ratelimit-reset-tokens_usage_based", "20ms"),
			want: obs{Limit: 10000, Remaining: 9999, Reset: 1532 * time.Millisecond, Quotas: quotas{
				{Unit: srl.UnitTokens, Limit: 2000000, Remaining: 1999000, Reset: 16*time.Minute + 17764*time.Millisecond},
			}},
			dialects: []string{FamilyOpenAI},
		},
		{
			name: "OpenAI 429 on tokens", status: 429,
			h: hdr("Date", dateHdr, "retry-after", "1", "retry-after-ms", "20", "x-ratelimit-limit-requests", "500", "x-ratelimit-remaining-requests", "499",
				"x-ratelimit-reset-requests", "120ms", "x-ratelimit-limit-tokens", "30000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "20ms"),
			want: obs{Limit: 500, Remaining: 499, Reset: 120 * time.Millisecond, RetryAfter: 20 * time.Millisecond, Limited: true, Quotas: quotas{
				{Unit: srl.UnitTokens, Limit: 30000, Remaining: 0, Reset: 20 * time.Millisecond},
			}},
			dialects: []string{FamilyOpenAI, FamilyRetryAfter},
		},
		{
			name: "a token reset of 0s stores nothing for tokens", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "60", "x-ratelimit-reset-requests", "0s",
				"x-ratelimit-limit-tokens", "150000", "x-ratelimit-remaining-tokens", "150000", "x-ratelimit-reset-tokens", "0s"),
			want:     obs{Limit: 60, Remaining: 60, Quotas: quotas{{Unit: srl.UnitTokens, Limit: 150000, Remaining: 150000}}},
			dialects: []string{FamilyOpenAI},
		},
		{
			name: "Groq: requests per day, tokens per minute", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimit-limit-requests", "14400", "x-ratelimit-remaining-requests", "14370", "x-ratelimit-reset-requests", "2m59.56s",
				"x-ratelimit-limit-tokens", "18000", "x-ratelimit-remaining-tokens", "17997", "x-ratelimit-reset-tokens", "7.66s"),
			want: obs{Limit: 14400, Remaining: 14370, Reset: 2*time.Minute + 59560*time.Millisecond, Quotas: quotas{
				{Unit: srl.UnitTokens, Limit: 18000, Remaining: 17997, Reset: 7660 * time.Millisecond},
			}},
			dialects: []string{FamilyOpenAI},
		},
		{
			name: "Azure: remaining counts only", status: 200,
			h:    hdr("Date", dateHdr, "x-ratelimit-remaining-requests", "99", "x-ratelimit-remaining-tokens", "98765"),
			want: obs{Remaining: 99, Quotas: quotas{{Unit: srl.UnitTokens, Remaining: 98765}}}, dialects: []string{FamilyOpenAI},
		},
		{
			name: "Azure: a 429 with only x-rate-limit-reset-tokens", status: 429,
			h:    hdr("Date", dateHdr, "x-rate-limit-reset-tokens", "55", "policy-id", "DeploymentRatelimit-Token"),
			want: obs{Limited: true, Quotas: quotas{{Unit: srl.UnitTokens, Reset: 55 * time.Second}}}, dialects: []string{FamilyOpenAI},
		},
		{
			name: "Azure Responses API: -1 tokens skip the unit, not the response", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimit-limit-requests", "100", "x-ratelimit-remaining-requests", "99", "x-ratelimit-reset-requests", "1s",
				"x-ratelimit-limit-tokens", "-1", "x-ratelimit-remaining-tokens", "-1", "x-ratelimit-reset-tokens", "0"),
			want: obs{Limit: 100, Remaining: 99, Reset: time.Second}, dialects: []string{FamilyOpenAI},
		},
		{
			name: "a negative other than -1 is malformed", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimit-limit-requests", "100", "x-ratelimit-remaining-requests", "99", "x-ratelimit-reset-requests", "1s",
				"x-ratelimit-limit-tokens", "150000", "x-ratelimit-remaining-tokens", "-2", "x-ratelimit-reset-tokens", "1s"),
			want: obs{}, malformed: []string{FamilyOpenAI},
		},
		{
			name: "garbage in the token reset spoils the family", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimit-limit-requests", "100", "x-ratelimit-remaining-requests", "99", "x-ratelimit-reset-requests", "1s",
				"x-ratelimit-limit-tokens", "150000", "x-ratelimit-remaining-tokens", "149000", "x-ratelimit-reset-tokens", "soon"),
			want: obs{}, malformed: []string{FamilyOpenAI},
		},
	})
}

// TestAnthropic: Anthropic's four quotas; token counts are rounded to the
// nearest thousand, so 500 less is reported.
func TestAnthropic(t *testing.T) {
	at := func(d time.Duration) string { return serverNow.Add(d).Format(time.RFC3339) }
	runCases(t, []parseCase{
		{
			name: "every quota", status: 200,
			h: hdr("Date", dateHdr,
				"anthropic-ratelimit-requests-limit", "1000", "anthropic-ratelimit-requests-remaining", "999", "anthropic-ratelimit-requests-reset", at(time.Second),
				"anthropic-ratelimit-tokens-limit", "96000", "anthropic-ratelimit-tokens-remaining", "95000", "anthropic-ratelimit-tokens-reset", at(4*time.Second),
				"anthropic-ratelimit-input-tokens-limit", "80000", "anthropic-ratelimit-input-tokens-remaining", "80000", "anthropic-ratelimit-input-tokens-reset", at(59*time.Second),
				"anthropic-ratelimit-output-tokens-limit", "16000", "anthropic-ratelimit-output-tokens-remaining", "0", "anthropic-ratelimit-output-tokens-reset", at(20*time.Second)),
			want: obs{Limit: 1000, Remaining: 999, Reset: 2 * time.Second, ResetSlack: time.Second, Quotas: quotas{
				{Unit: srl.UnitTokens, Limit: 96000, Remaining: 94500, Reset: 5 * time.Second, ResetSlack: time.Second},
				{Unit: srl.UnitInputTokens, Limit: 80000, Remaining: 79500, Reset: time.Minute, ResetSlack: time.Second},
				{Unit: srl.UnitOutputTokens, Limit: 16000, Remaining: 0, Reset: 21 * time.Second, ResetSlack: time.Second},
			}},
			dialects: []string{FamilyAnthropic},
		},
		{
			name: "a rounded count below 500 is none", status: 200,
			h: hdr("Date", dateHdr, "anthropic-ratelimit-output-tokens-limit", "16000", "anthropic-ratelimit-output-tokens-remaining", "400",
				"anthropic-ratelimit-output-tokens-reset", at(20*time.Second)),
			want:     obs{Quotas: quotas{{Unit: srl.UnitOutputTokens, Limit: 16000, Remaining: 0, Reset: 21 * time.Second, ResetSlack: time.Second}}},
			dialects: []string{FamilyAnthropic},
		},
		{
			name: "a 429 with retry-after", status: 429,
			h: hdr("Date", dateHdr, "retry-after", "18",
				"anthropic-ratelimit-input-tokens-limit", "80000", "anthropic-ratelimit-input-tokens-remaining", "0", "anthropic-ratelimit-input-tokens-reset", at(17*time.Second)),
			want:     obs{RetryAfter: 18 * time.Second, Limited: true, Quotas: quotas{{Unit: srl.UnitInputTokens, Limit: 80000, Remaining: 0, Reset: 18 * time.Second, ResetSlack: time.Second}}},
			dialects: []string{FamilyAnthropic, FamilyRetryAfter},
		},
		{
			name: "a token reset that is no RFC 3339 spoils the family", status: 200,
			h: hdr("Date", dateHdr, "anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "49", "anthropic-ratelimit-requests-reset", at(time.Second),
				"anthropic-ratelimit-tokens-limit", "96000", "anthropic-ratelimit-tokens-remaining", "95000", "anthropic-ratelimit-tokens-reset", "1724244059"),
			want: obs{}, malformed: []string{FamilyAnthropic},
		},
	})
}

// TestMistral: Kong's headers by size, in tokens; the window Kong reports
// (least remaining) is taken, a minute when it matches the minute's.
func TestMistral(t *testing.T) {
	runCases(t, []parseCase{
		{
			name: "the minute binds", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimitbysize-limit-minute", "500000", "x-ratelimitbysize-remaining-minute", "467993",
				"x-ratelimitbysize-limit-month", "1000000000", "x-ratelimitbysize-remaining-month", "999532007",
				"ratelimitbysize-limit", "500000", "ratelimitbysize-remaining", "467993", "ratelimitbysize-reset", "40", "ratelimitbysize-query-cost", "32007"),
			want:     obs{Quotas: quotas{{Unit: srl.UnitTokens, Limit: 500000, Remaining: 467993, Reset: 40 * time.Second, Window: time.Minute}}},
			dialects: []string{FamilyMistral},
		},
		{
			name: "the month binds at the end of its budget", status: 200,
			h: hdr("Date", dateHdr, "x-ratelimitbysize-limit-minute", "500000", "x-ratelimitbysize-remaining-minute", "467993",
				"x-ratelimitbysize-limit-month", "1000000000", "x-ratelimitbysize-remaining-month", "12000",
				"ratelimitbysize-limit", "1000000000", "ratelimitbysize-remaining", "12000", "ratelimitbysize-reset", "3600"),
			want:     obs{Quotas: quotas{{Unit: srl.UnitTokens, Limit: 1000000000, Remaining: 12000, Reset: time.Hour}}},
			dialects: []string{FamilyMistral},
		},
		{
			// As quoted in client code: Kong's summary without its remaining
			// count, whose reset is not the minute's for sure.
			name: "a summary without remaining stores nothing", status: 200,
			h:    hdr("Date", dateHdr, "x-ratelimitbysize-remaining-minute", "467993", "ratelimitbysize-limit", "500000", "ratelimitbysize-query-cost", "32007", "ratelimitbysize-reset", "40"),
			want: obs{Quotas: quotas{{Unit: srl.UnitTokens, Limit: 500000}}}, dialects: []string{FamilyMistral},
		},
		{
			name: "the same on a 429: spent until the reset", status: 429,
			h:    hdr("Date", dateHdr, "ratelimitbysize-limit", "500000", "ratelimitbysize-reset", "40"),
			want: obs{Limited: true, Quotas: quotas{{Unit: srl.UnitTokens, Limit: 500000, Reset: 40 * time.Second}}}, dialects: []string{FamilyMistral},
		},
		{
			name: "minute counts without a reset store nothing", status: 200,
			h:        hdr("Date", dateHdr, "x-ratelimitbysize-limit-minute", "500000", "x-ratelimitbysize-remaining-minute", "467993"),
			want:     obs{Quotas: quotas{{Unit: srl.UnitTokens, Limit: 500000, Remaining: 467993, Window: time.Minute}}},
			dialects: []string{FamilyMistral},
		},
		{
			name: "a month's reset is beyond the horizon", status: 200,
			h:    hdr("Date", dateHdr, "ratelimitbysize-limit", "1000000000", "ratelimitbysize-remaining", "12000", "ratelimitbysize-reset", "1209600"),
			want: obs{}, malformed: []string{FamilyMistral},
		},
		{
			name: "garbage in the minute's counts", status: 200,
			h:    hdr("Date", dateHdr, "x-ratelimitbysize-remaining-minute", "lots", "ratelimitbysize-limit", "500000", "ratelimitbysize-remaining", "467993", "ratelimitbysize-reset", "40"),
			want: obs{}, malformed: []string{FamilyMistral},
		},
	})
}

// geminiBody is a 429 of the Gemini API, RESOURCE_EXHAUSTED, with the
// given retryDelay.
func geminiBody(delay string) string {
	return `{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
          {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",
            "quotaId": "GenerateContentInputTokensPerModelPerMinute-FreeTier",
            "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"},
            "quotaValue": "250000"
          }
        ]
      },
      {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": ` + delay + `}
    ]
  }
}`
}

// TestGemini: no headers; the wait is in the 429's RetryInfo.
func TestGemini(t *testing.T) {
	runCases(t, []parseCase{
		{
			name: "RetryInfo", status: 429, h: hdr("Date", dateHdr, "Content-Type", "application/json; charset=UTF-8"), body: geminiBody(`"26s"`),
			want: obs{RetryAfter: 26 * time.Second, Limited: true}, dialects: []string{FamilyGemini},
		},
		{
			name: "a fraction of a second", status: 429, h: hdr("Date", dateHdr), body: geminiBody(`"0.5s"`),
			want: obs{RetryAfter: 500 * time.Millisecond, Limited: true}, dialects: []string{FamilyGemini},
		},
		{
			name: "Retry-After, when sent, wins", status: 429, h: hdr("Date", dateHdr, "Retry-After", "30"), body: geminiBody(`"26s"`),
			want: obs{RetryAfter: 30 * time.Second, Limited: true}, dialects: []string{FamilyRetryAfter},
		},
		{
			name: "a negative delay", status: 429, h: hdr("Date", dateHdr), body: geminiBody(`"-26s"`),
			want: obs{Limited: true}, malformed: []string{FamilyGemini},
		},
		{
			name: "a delay without its unit", status: 429, h: hdr("Date", dateHdr), body: geminiBody(`"26"`),
			want: obs{Limited: true}, malformed: []string{FamilyGemini},
		},
		{
			name: "a delay as a number", status: 429, h: hdr("Date", dateHdr), body: geminiBody(`26`),
			want: obs{Limited: true}, malformed: []string{FamilyGemini},
		},
		{
			name: "a body cut inside the delay", status: 429, h: hdr("Date", dateHdr), body: `{"error": {"details": [{"retryDelay": "26`,
			want: obs{Limited: true}, malformed: []string{FamilyGemini},
		},
		{
			name: "beyond the horizon", status: 429, h: hdr("Date", dateHdr), body: geminiBody(`"86401s"`),
			want: obs{Limited: true}, malformed: []string{FamilyGemini},
		},
	})
}

// TestShouldRetry: the server's verdict on sending the request again.
func TestShouldRetry(t *testing.T) {
	yes, no := true, false
	runCases(t, []parseCase{
		{
			name: "OpenAI: a 429 not worth retrying", status: 429, h: hdr("Date", dateHdr, "x-should-retry", "false"),
			want: obs{Limited: true}, shouldRetry: &no,
		},
		{
			name: "Anthropic: an overloaded 529 worth retrying", status: 529, h: hdr("Date", dateHdr, "x-should-retry", "true"),
			want: obs{}, shouldRetry: &yes,
		},
		{
			name: "Stripe", status: 429, h: hdr("Date", dateHdr, "Stripe-Should-Retry", "true", "Stripe-Rate-Limited-Reason", "global-rate"),
			want: obs{Limited: true}, shouldRetry: &yes,
		},
		{
			name: "x-should-retry wins over Stripe's", status: 409, h: hdr("Date", dateHdr, "X-Should-Retry", "False", "Stripe-Should-Retry", "true"),
			want: obs{}, shouldRetry: &no,
		},
		{name: "absent", status: 500, h: hdr("Date", dateHdr), want: obs{}},
		{
			name: "neither true nor false", status: 500, h: hdr("Date", dateHdr, "x-should-retry", "1"),
			want: obs{}, malformed: []string{FamilyShouldRetry},
		},
	})
}
