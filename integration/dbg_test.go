package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/httprate"

	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

func TestDbgHttprate(t *testing.T) {
	rl := httprate.NewRateLimiter(50, 10*time.Second, httprate.WithKeyFuncs(httprate.KeyByIP))
	h := rl.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var mu sync.Mutex
	var events []string
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		mu.Lock()
		events = append(events, fmt.Sprintf("%6.3f %d rem=%s reset=%s now=%d", time.Since(start).Seconds(), rec.Code, rec.Header().Get("X-Ratelimit-Remaining"), rec.Header().Get("X-Ratelimit-Reset"), time.Now().UnixMicro()))
		mu.Unlock()
	}))
	defer srv.Close()
	addr := sharedRedis(t)
	rdb := newClient(t, addr, nil)
	prefix := uniquePrefix(t)
	var clients []*http.Client
	for p := 0; p < 4; p++ {
		clients = append(clients, httpclient.New(httpclient.WithRedis(newClient(t, addr, nil), redislimit.WithKeyPrefix(prefix))))
	}
	stop := time.Now().Add(45 * time.Second)
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				ctx, cancel := context.WithDeadline(context.Background(), stop)
				req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
				resp, err := clients[g%4].Do(req)
				cancel()
				if err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	go func() {
		for time.Now().Before(stop) {
			q, _ := rdb.HGet(context.Background(), redislimit.RedisKey(prefix, strings.TrimPrefix(srv.URL, "http://")), "q").Result()
			tm, _ := rdb.Time(context.Background()).Result()
			mu.Lock()
			events = append(events, fmt.Sprintf("%6.3f   status %s now=%d", time.Since(start).Seconds(), q, tm.UnixMicro()))
			mu.Unlock()
			time.Sleep(500 * time.Millisecond)
		}
	}()
	wg.Wait()
	for _, e := range events {
		t.Log(e)
	}
}
