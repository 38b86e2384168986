package smartratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
)

// Limits are plain values: build them with PerSecond, PerMinute, PerHour
// or Every, widen the burst with WithBurst, and check a hand-made one with
// Validate.
func ExampleLimit() {
	smooth := srl.PerMinute(60)               // one a second, never more than 60 in any minute
	bursty := srl.PerMinute(60).WithBurst(10) // 10 at once after a pause: up to 69 in a minute
	fmt.Println(smooth, "|", bursty)
	fmt.Println("emission interval:", time.Duration(smooth.IntervalMicros())*time.Microsecond)

	bad := srl.Limit{Rate: 0, Period: time.Second}
	err := bad.Validate()
	fmt.Println(errors.Is(err, srl.ErrInvalidLimit), err)
	// Output:
	// 60/1m0s | 60/1m0s burst 10
	// emission interval: 1s
	// true smartratelimit: invalid limit: rate 0 must be positive
}

// Window limits say "at most n in any window" and let bursts through;
// pacing limits space every request by the slowest of them. Here a batch of
// 50 requests meets "10 a second, 60 a minute, 1000 an hour" both ways, in
// the in-memory store on a simulated clock, each refused request retried
// exactly when its refusal says.
func ExampleWindow() {
	batch := func(limits ...srl.Limit) string {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		start := now
		store := fallback.New(fallback.WithClock(func() time.Time { return now }))
		var admitted []time.Duration
		for len(admitted) < 50 {
			d, err := store.Acquire(context.Background(), srl.Request{Key: "api.example.com", N: 1, DefaultLimits: limits})
			if err != nil {
				return err.Error()
			}
			if !d.Allowed {
				now = now.Add(d.RetryAfter)
				continue
			}
			admitted = append(admitted, now.Sub(start))
		}
		// "10 at 1.1s": how many were admitted at each instant.
		var groups []string
		for i := 0; i < len(admitted); {
			j := i
			for j < len(admitted) && admitted[j] == admitted[i] {
				j++
			}
			groups = append(groups, fmt.Sprintf("%d at %v", j-i, admitted[i]))
			i = j
		}
		if len(groups) > 4 {
			groups = append(groups[:3], "…", groups[len(groups)-1])
		}
		return strings.Join(groups, ", ")
	}
	fmt.Println("window:", batch(srl.Window(10, time.Second), srl.Window(60, time.Minute), srl.Window(1000, time.Hour)))
	fmt.Println("pacing:", batch(srl.PerSecond(10), srl.PerMinute(60), srl.PerHour(1000)))
	// Output:
	// window: 10 at 0s, 10 at 1.1s, 10 at 2.2s, …, 10 at 4.4s
	// pacing: 1 at 0s, 1 at 3.6s, 1 at 7.2s, …, 1 at 2m56.4s
}

// Normalize is what every backend applies to an observation before it
// stores it: bounds checked, remaining clamped to the limit, the quota
// moved into Quotas in its unit.
func ExampleObservation_Normalize() {
	// X-RateLimit-Limit: 5000, X-RateLimit-Remaining: 6000 (a server bug),
	// reset in 90s.
	o, err := srl.Observation{Limit: 5000, Remaining: 6000, Reset: 90 * time.Second}.Normalize()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	q := o.Quotas[0]
	fmt.Printf("%s: %d of %d, resets in %v\n", q.Unit, q.Remaining, q.Limit, q.Reset)

	// A garbage header can never block a fleet for days.
	_, err = srl.Observation{RetryAfter: 72 * time.Hour}.Normalize()
	fmt.Println(errors.Is(err, srl.ErrInvalidObservation))
	// Output:
	// requests: 5000 of 5000, resets in 1m30s
	// true
}

// Utilization is the share of the tightest budget already spent.
func ExampleStatus_Utilization() {
	st := srl.Status{Key: "api.github.com", Limit: 5000, Remaining: 400, ResetAfter: 20 * time.Minute}
	fmt.Printf("%.2f\n", st.Utilization())
	if st.Utilization() > 0.9 {
		fmt.Println("warning: rate limit nearly exhausted")
	}

	st.BlockedFor = time.Minute // a Retry-After in force: nothing may be sent
	fmt.Printf("%.2f\n", st.Utilization())
	// Output:
	// 0.92
	// warning: rate limit nearly exhausted
	// 1.00
}

// Every "limited" error matches ErrRateLimited; errors.As opens it for the
// key, the wait and the cause.
func ExampleLimitError() {
	// What a limiter's Wait or an HTTP client with WithRaiseOnLimit returns,
	// often wrapped by the code in between.
	var err error = &srl.LimitError{Key: "api.github.com", RetryAfter: 42 * time.Second, Cause: srl.CauseQuota}
	err = fmt.Errorf("listing issues: %w", err)

	fmt.Println(errors.Is(err, srl.ErrRateLimited))
	var le *srl.LimitError
	if errors.As(err, &le) {
		fmt.Println(le.Key, "refused by", le.Cause, "- retry in", le.RetryAfter)
	}
	fmt.Println(err)
	// Output:
	// true
	// api.github.com refused by quota - retry in 42s
	// listing issues: smartratelimit: rate limited on "api.github.com" by quota; retry after 42s
}

// Examples are documentation a user copies: one that imports an internal
// package does not compile outside this module.
func TestExamplesImportNoInternalPackage(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		hasExample := false
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Example") {
				hasExample = true
			}
		}
		if !hasExample {
			return nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			internal := strings.HasSuffix(p, "/internal") || strings.Contains(p, "/internal/")
			if internal {
				t.Errorf("%s has examples and imports %s: examples must compile when pasted outside this module", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
