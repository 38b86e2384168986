package redislimit_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// TestMiniredisRecipe runs the README's "test locally with miniredis"
// block exactly as printed (the test fails when the two drift apart), and
// travels in time across a refusal the limiter has cached.
func TestMiniredisRecipe(t *testing.T) {
	// README:begin
	mr := miniredis.RunT(t) // github.com/alicebob/miniredis/v2
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	limiter := redislimit.New(rdb, redislimit.WithClientClock(func() time.Time { return now }))

	// Time travel: move the test's clock and miniredis's TTLs together.
	advance := func(d time.Duration) { now = now.Add(d); mr.FastForward(d) }
	// README:end

	ctx := context.Background()
	limit := srl.PerMinute(1)
	if d, err := limiter.Allow(ctx, "api", limit); err != nil || !d.Allowed {
		t.Fatalf("first: %+v, %v", d, err)
	}
	for i := 0; i < 3; i++ { // refused, the later ones from the refusal cache
		if d, err := limiter.Allow(ctx, "api", limit); err != nil || d.Allowed || d.RetryAfter != time.Minute {
			t.Fatalf("refusal %d: %+v, %v", i, d, err)
		}
	}
	advance(time.Minute)
	if d, err := limiter.Allow(ctx, "api", limit); err != nil || !d.Allowed {
		t.Fatalf("a minute later: %+v, %v; the cached refusal outlived the travel", d, err)
	}
	advance(2 * time.Minute)
	if mr.Exists(redislimit.RedisKey(redislimit.DefaultKeyPrefix, "api")) {
		t.Fatal("the key's state outlived its TTL after the travel")
	}

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("recipe_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if want, got := recipeInTest(string(self)), recipeInReadme(string(readme)); got != want {
		t.Fatalf("the README's miniredis block differs from the one this test runs:\nREADME:\n%s\ntest:\n%s", got, want)
	}
}

func recipeInTest(src string) string {
	begin := strings.Index(src, "// README:begin\n")
	end := strings.Index(src, "\t// README:end")
	block := src[begin+len("// README:begin\n") : end]
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		lines = append(lines, strings.TrimPrefix(line, "\t"))
	}
	return strings.Join(lines, "\n")
}

func recipeInReadme(readme string) string {
	section := readme[strings.Index(readme, "### The same against miniredis"):]
	start := strings.Index(section, "```go\n") + len("```go\n")
	return strings.TrimRight(section[start:start+strings.Index(section[start:], "```")], "\n")
}
