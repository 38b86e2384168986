package dialect

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// hugeHeader is a response whose rate-limit fields are each several MiB,
// or spread over many lines: what a hostile or broken server can send.
func hugeHeader() http.Header {
	const size = 9 << 20
	h := hdr(
		"Ratelimit", strings.Repeat(`"p";r=1;t=1, `, size/13)+`"p";r=1`,
		"Ratelimit-Policy", strings.Repeat(`"p";q=1;w=1, `, size/13)+`"p";q=1`,
		"Beta-Ratelimit", `"p";r=1;t=1`,
		"X-Ratelimit-Limit", strings.Repeat("9", size),
		"X-Ratelimit-Remaining", "1",
		"X-Ratelimit-Reset", strings.Repeat(" ", size)+"1",
		"X-Rate-Limit-Remaining", "1",
		"X-Rate-Limit-Reset", "1",
		"X-Rate-Limit-Used", strings.Repeat("1", size),
		"Retry-After", strings.Repeat("1", size),
		"Date", strings.Repeat("Mon, ", size/5),
		"Age", strings.Repeat("0", size),
		"X-Shopify-Shop-Api-Call-Limit", strings.Repeat("1", size)+"/40",
	)
	for i := 0; i < 1<<17; i++ {
		h.Add("Beta-Ratelimit-Policy", `"p";q=1`)
	}
	return h
}

// TestHugeHeadersCostLittle: a 9 MiB RateLimit field used to cost 426 MiB
// of heap. What Parse looks at is bounded, so its allocations stay those
// of a normal response, and every oversized family is malformed.
func TestHugeHeadersCostLittle(t *testing.T) {
	in := Input{Header: hugeHeader(), StatusCode: 429, Body: []byte(strings.Repeat("x", 9<<20) + "secondary rate limit"), Received: received}
	got := Parse(in, nil)
	if want := []string{FamilyIETF8, FamilyXRateLimit, FamilyShopify, FamilyRetryAfter}; !sameSet(got.Malformed, want) {
		t.Errorf("malformed %v, want %v", got.Malformed, want)
	}
	if got.Cached || got.Observation.RetryAfter != 0 || !got.Observation.Limited {
		t.Errorf("beyond the bounds something was read: %+v", got)
	}

	const runs = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		Parse(in, nil)
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 8<<10 {
		t.Errorf("Parse allocates %d bytes for a response of huge headers", perRun)
	}
	if n := testing.AllocsPerRun(runs, func() { Parse(in, nil) }); n > 50 {
		t.Errorf("Parse makes %v allocations for a response of huge headers", n)
	}
}

// TestBoundsLeaveRealFieldsAlone: the bounds sit well above real fields;
// one step past them the family is malformed.
func TestBoundsLeaveRealFieldsAlone(t *testing.T) {
	policies := func(n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = `"p` + strings.Repeat("x", i) + `";r=5;t=30`
		}
		return strings.Join(names, ", ")
	}
	params := func(n int) string { return `"p";r=5;t=30` + strings.Repeat(";x-vendor=1", n-2) }
	long := func(n int) string { return strings.Repeat("0", n-1) + "7" }
	runCases(t, []parseCase{
		{
			name: "16 policies", status: 200, h: hdr("RateLimit", policies(maxMembers)),
			want: obs{Remaining: 5, Reset: 30 * time.Second}, dialects: []string{FamilyIETF8},
		},
		{
			name: "17 policies", status: 200, h: hdr("RateLimit", policies(maxMembers+1)),
			want: obs{}, malformed: []string{FamilyIETF8},
		},
		{
			name: "16 parameters", status: 200, h: hdr("RateLimit", params(maxParams)),
			want: obs{Remaining: 5, Reset: 30 * time.Second}, dialects: []string{FamilyIETF8},
		},
		{
			name: "17 parameters", status: 200, h: hdr("RateLimit", params(maxParams+1)),
			want: obs{}, malformed: []string{FamilyIETF8},
		},
		{
			name: "a field of maxField bytes", status: 200, h: hdr("X-RateLimit-Remaining", strings.Repeat(" ", maxField-1)+"7", "X-RateLimit-Reset", "30"),
			want: obs{Remaining: 7, Reset: 30 * time.Second}, dialects: []string{FamilyXRateLimit},
		},
		{
			name: "one byte more", status: 200, h: hdr("X-RateLimit-Remaining", strings.Repeat(" ", maxField)+"7", "X-RateLimit-Reset", "30"),
			want: obs{}, malformed: []string{FamilyXRateLimit},
		},
		{
			name: "lines that join beyond maxField", status: 200,
			h:    hdr("RateLimit", `"a";r=5;t=30`, "RateLimit", `"b";r=9;t=30;x-note="`+strings.Repeat("x", maxField)+`"`),
			want: obs{}, malformed: []string{FamilyIETF8},
		},
		{
			name: "leading zeros beyond a number's digits", status: 200, h: hdr("X-RateLimit-Remaining", long(maxDigits+1), "X-RateLimit-Reset", "30"),
			want: obs{}, malformed: []string{FamilyXRateLimit},
		},
	})
}
