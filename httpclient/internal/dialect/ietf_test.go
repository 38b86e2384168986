package dialect

import (
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// TestIETF covers every generation of the draft still on the wire, the
// renames of -11 and those in flight, units other than requests, and
// integers that used to wrap when turned into durations.
func TestIETF(t *testing.T) {
	runCases(t, []parseCase{
		{
			name: "t beyond a Duration in seconds is rejected, not wrapped to 290ms", status: 200,
			h:    hdr("RateLimit", `"default";r=5;t=18446744074`, "RateLimit-Policy", `"default";q=100;w=60`),
			want: obs{}, malformed: []string{FamilyIETF8},
		},
		{
			name: "the same in a -07 reset", status: 200,
			h:    hdr("RateLimit", "limit=100, remaining=50, reset=18446744074"),
			want: obs{}, malformed: []string{FamilyIETF7},
		},
		{
			name: "a policy window that would wrap is left out", status: 200,
			h:    hdr("RateLimit", `"default";r=50;t=30`, "RateLimit-Policy", `"default";q=100;w=18446744074`),
			want: obs{Limit: 100, Remaining: 50, Reset: 30 * time.Second}, dialects: []string{FamilyIETF8},
		},
		{
			name: "-11's example: a content-bytes policy is its own quota", status: 200,
			h: hdr("RateLimit-Policy", `"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:`, "RateLimit-Policy", `"default";q=100;w=60`,
				"RateLimit", `"peruser";r=20;t=5;pk=:sdfjLJUOUH==:, "default";r=50;t=30`),
			want: obs{Limit: 100, Remaining: 50, Reset: 30 * time.Second, Window: time.Minute, Quotas: []srl.QuotaObservation{
				{Unit: "content-bytes", Limit: 65535, Remaining: 20, Reset: 5 * time.Second, Window: 10 * time.Second},
			}},
			dialects: []string{FamilyIETF8},
		},
		{
			name: "-08's bytes unit, named leniently as a Token", status: 200,
			h:        hdr("RateLimit-Policy", `"up";q=1000000;qu=bytes;w=60`, "RateLimit", `"up";r=1000;t=12`),
			want:     obs{Quotas: []srl.QuotaObservation{{Unit: "bytes", Limit: 1000000, Remaining: 1000, Reset: 12 * time.Second, Window: time.Minute}}},
			dialects: []string{FamilyIETF8},
		},
		{
			name: "concurrent requests are not a request quota", status: 200,
			h: hdr("RateLimit-Policy", `"conc";q=10;qu="concurrent-requests", "permin";q=50;w=60;qu="requests"`,
				"RateLimit", `"conc";r=2, "permin";r=40;t=20`),
			want: obs{Limit: 50, Remaining: 40, Reset: 20 * time.Second, Window: time.Minute}, dialects: []string{FamilyIETF8},
		},
		{
			name: "a unit no backend can name is left out", status: 200,
			h:    hdr("RateLimit-Policy", `"x";q=10;qu="Weird Unit";w=60, "permin";q=50;w=60`, "RateLimit", `"x";r=1;t=5, "permin";r=40;t=20`),
			want: obs{Limit: 50, Remaining: 40, Reset: 20 * time.Second, Window: time.Minute}, dialects: []string{FamilyIETF8},
		},
		{
			name: "the binding policy of each unit: least available, then longest window", status: 200,
			h: hdr("RateLimit-Policy", `"permin";q=50;w=60, "perhr";q=1000;w=3600`,
				"RateLimit", `"permin";r=12;t=20, "perhr";r=12;t=1800`),
			want: obs{Limit: 1000, Remaining: 12, Reset: 30 * time.Minute, Window: time.Hour}, dialects: []string{FamilyIETF8},
		},
		{
			name: "a for the available quota", status: 200,
			h:    hdr("RateLimit", `"default";a=50;t=30`, "RateLimit-Policy", `"default";q=100;w=60`),
			want: obs{Limit: 100, Remaining: 50, Reset: 30 * time.Second, Window: time.Minute}, dialects: []string{FamilyIETF8},
		},
		{
			name: "w for the effective window", status: 200,
			h:    hdr("RateLimit", `"default";r=50;w=30`, "RateLimit-Policy", `"default";q=100;w=60`),
			want: obs{Limit: 100, Remaining: 50, Reset: 30 * time.Second, Window: time.Minute}, dialects: []string{FamilyIETF8},
		},
		{
			name: "old and new names that agree", status: 200,
			h:    hdr("RateLimit", `"default";r=50;a=50;t=30;w=30`),
			want: obs{Remaining: 50, Reset: 30 * time.Second}, dialects: []string{FamilyIETF8},
		},
		{
			name: "old and new names that disagree", status: 200,
			h:    hdr("RateLimit", `"default";r=50;a=5;t=30`),
			want: obs{}, malformed: []string{FamilyIETF8},
		},
		{
			name: "without t the policy window bounds the wait", status: 200,
			h:    hdr("RateLimit", `"default";r=999;pk=:dHJpYWwxMjEzMjM=:`, "RateLimit-Policy", `"default";q=1000;w=60`),
			want: obs{Limit: 1000, Remaining: 999, Reset: time.Minute, Window: time.Minute}, dialects: []string{FamilyIETF8},
		},
		{
			name: "express-rate-limit draft-8", status: 200,
			h:    hdr("RateLimit-Policy", `"100-in-1min"; q=100; w=60; pk=:ZTNiM2MwYmVjMzM1:`, "RateLimit", `"100-in-1min"; r=99; t=60; pk=:ZTNiM2MwYmVjMzM1:`),
			want: obs{Limit: 100, Remaining: 99, Reset: time.Minute, Window: time.Minute}, dialects: []string{FamilyIETF8},
		},
		{
			name: "a policy field that does not parse leaves the units unknown", status: 200,
			h:    hdr("RateLimit", `"default";r=50;t=30`, "RateLimit-Policy", `"default";q=100;w=60;qu=`),
			want: obs{}, malformed: []string{FamilyIETF8},
		},
		{
			name: "-06 separate fields are still read", status: 200,
			h:    hdr("RateLimit-Limit", "100", "RateLimit-Remaining", "99", "RateLimit-Reset", "30", "RateLimit-Policy", "100;w=60"),
			want: obs{Limit: 100, Remaining: 99, Reset: 30 * time.Second, Window: time.Minute}, dialects: []string{FamilyIETF6},
		},
		{
			name: "-06 with a policy window that would wrap", status: 200,
			h:    hdr("RateLimit-Limit", "100", "RateLimit-Remaining", "99", "RateLimit-Reset", "30", "RateLimit-Policy", "100;w=18446744074"),
			want: obs{Limit: 100, Remaining: 99, Reset: 30 * time.Second}, dialects: []string{FamilyIETF6},
		},
	})
}
