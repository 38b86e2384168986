package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/internal/fakellm"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// llmFleet drives clients × goroutines chat requests at url for d, each
// client on its own Redis connection, goroutine g asking models[g %
// len(models)] for maxTokens with a prompt of a random length. body
// builds the request body; header is set on every request.
func llmFleet(t *testing.T, url string, clients, goroutines int, d time.Duration, models []string, maxTokens int, header map[string]string) {
	t.Helper()
	addr := sharedRedis(t)
	prefix := uniquePrefix(t)
	var wg sync.WaitGroup
	var failed atomic.Int64
	stop := time.Now().Add(d)
	for c := 0; c < clients; c++ {
		client := httpclient.New(
			httpclient.WithRedis(newClient(t, addr, nil), redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(2*time.Second)),
			httpclient.WithMaxWait(10*time.Second))
		for g := 0; g < goroutines; g++ {
			model := models[g%len(models)]
			rng := rand.New(rand.NewPCG(uint64(c), uint64(g)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					prompt := strings.Repeat("word ", 8+rng.IntN(160))
					body := fmt.Sprintf(`{"model":%q,"max_tokens":%d,"messages":[{"role":"user","content":%q}]}`, model, maxTokens, prompt)
					ctx, cancel := context.WithDeadline(context.Background(), stop)
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					for k, v := range header {
						req.Header.Set(k, v)
					}
					resp, err := client.Do(req)
					cancel()
					var le *srl.LimitError
					switch {
					case err == nil:
						resp.Body.Close()
					case ctx.Err() != nil:
						return
					case errors.As(err, &le) && le.Deadline:
						return
					default:
						failed.Add(1)
						t.Logf("request error: %v", err)
					}
				}
			}()
		}
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed", n)
	}
}

// fullWindows drops the first and the last window of a run: the windows
// are aligned to the clock, so those two are partial.
func fullWindows(t *testing.T, model string, c fakellm.Counts) []fakellm.Window {
	t.Helper()
	if len(c.Windows) < 4 {
		t.Fatalf("%s: %d windows; want at least two full ones: %+v", model, len(c.Windows), c.Windows)
	}
	return c.Windows[1 : len(c.Windows)-1]
}

// An OpenAI-style API, tokens the binding limit, charged at arrival as
// OpenAI documents; two models, each with its own budget. The fleet
// (4 transports × 8 goroutines) estimates every request's tokens before
// sending it, and is refused not once after the first response while
// using at least 85% of each model's token budget in every full window.
func TestLLMFleetOpenAITokens(t *testing.T) {
	sharedRedis(t)
	t.Parallel()
	api := &fakellm.Server{Style: fakellm.OpenAI, Window: 2 * time.Second, Requests: 1000, Tokens: 20000, Latency: 20 * time.Millisecond}
	srv := httptest.NewServer(api)
	defer srv.Close()
	models := []string{"gpt-4.1", "gpt-4.1-mini"}
	llmFleet(t, srv.URL+"/v1/chat/completions", 4, 8, 9*time.Second, models, 300, nil)
	for _, model := range models {
		c := api.Counts(model)
		t.Logf("%s: %d refused (%d after the first response); windows %+v", model, c.Limited, c.LimitedAfterFirst, c.Windows)
		if c.LimitedAfterFirst != 0 {
			t.Errorf("%s: %d requests refused after the first response", model, c.LimitedAfterFirst)
		}
		for _, w := range fullWindows(t, model, c) {
			if w.Tokens*100 < 85*api.Tokens {
				t.Errorf("%s: window at %s used %d of %d tokens (< 85%%)", model, w.Start.Format("15:04:05"), w.Tokens, api.Tokens)
			}
			if w.Requests >= api.Requests {
				t.Errorf("%s: requests bound the window, not tokens: %+v", model, w)
			}
		}
	}
}

// An Anthropic-style API that counts output tokens as they are produced,
// far below max_tokens, and rounds what is left to thousands: the
// estimate (max_tokens) is settled by each response's remaining counts, so
// the fleet is refused not once after the first response and uses at
// least 70% of the binding budget (output tokens) in every full window.
func TestLLMFleetAnthropicTokens(t *testing.T) {
	sharedRedis(t)
	t.Parallel()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	api := &fakellm.Server{Style: fakellm.Anthropic, Window: 3 * time.Second, Requests: 1000,
		InputTokens: 400000, OutputTokens: 16000, Latency: 30 * time.Millisecond,
		Output: func(maxTokens int) int {
			mu.Lock()
			defer mu.Unlock()
			return maxTokens/5 + rng.IntN(maxTokens*2/5) // 20% to 60%
		}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	models := []string{"claude-sonnet-4-5", "claude-haiku-4-5"}
	llmFleet(t, srv.URL+"/v1/messages", 4, 8, 13*time.Second, models, 800, map[string]string{"anthropic-version": "2023-06-01"})
	for _, model := range models {
		c := api.Counts(model)
		t.Logf("%s: %d refused (%d after the first response); windows %+v", model, c.Limited, c.LimitedAfterFirst, c.Windows)
		if c.LimitedAfterFirst != 0 {
			t.Errorf("%s: %d requests refused after the first response", model, c.LimitedAfterFirst)
		}
		for _, w := range fullWindows(t, model, c) {
			if w.OutputTokens*100 < 70*api.OutputTokens {
				t.Errorf("%s: window at %s used %d of %d output tokens (< 70%%)", model, w.Start.Format("15:04:05"), w.OutputTokens, api.OutputTokens)
			}
		}
	}
}
