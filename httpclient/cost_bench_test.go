package httpclient

import (
	"net/http"
	"strings"
	"testing"
)

// A typical chat completion: a system prompt, a few turns, max_tokens.
var chatBody = []byte(`{"model":"gpt-4.1","max_tokens":512,"temperature":0.2,"messages":[` +
	`{"role":"system","content":"You are a support assistant for an online shop. Answer briefly and cite the order number."},` +
	`{"role":"user","content":"` + strings.Repeat("My order 12345 has not arrived yet, can you check? ", 12) + `"},` +
	`{"role":"assistant","content":"` + strings.Repeat("I checked order 12345: it left the warehouse yesterday. ", 6) + `"},` +
	`{"role":"user","content":[{"type":"text","text":"Thanks. When will it arrive?"}]}]}`)

// BenchmarkEstimateLLM is what pricing a chat completion costs the
// Transport (run: go test -run '^$' -bench EstimateLLM -benchmem ./httpclient/).
func BenchmarkEstimateLLM(b *testing.B) {
	req, _ := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions", nil)
	req.Header.Set("Content-Type", "application/json")
	b.SetBytes(int64(len(chatBody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := EstimateLLM(req, chatBody); !ok {
			b.Fatal("not recognised")
		}
	}
}
