package dialect

import (
	"net/http"
	"testing"
)

// BenchmarkParse is the transport's parse of a common success: the
// X-RateLimit trio of a roomy quota and a Date, among a few other headers.
// Run: go test -run '^$' -bench Parse -benchmem ./httpclient/internal/dialect/
func BenchmarkParse(b *testing.B) {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4987")
	h.Set("X-RateLimit-Reset", epoch(3600e9))
	h.Set("Date", dateHdr)
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", "512")
	in := Input{Header: h, StatusCode: http.StatusOK, Received: received}
	if !Parse(in, nil).Found {
		b.Fatal("the headers say nothing")
	}
	b.ReportAllocs()
	for b.Loop() {
		Parse(in, nil)
	}
}
