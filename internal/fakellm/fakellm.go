// Package fakellm is a local LLM API that meters requests and tokens per
// model in fixed windows, and says so in its headers, as OpenAI and
// Anthropic do: the server of the LLM fleet tests and of
// "smartratelimit demo --llm". It generates no text; it charges, answers
// and counts.
package fakellm

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Style is whose API the server imitates.
type Style int

const (
	// OpenAI charges a request, at arrival, the larger of its max_tokens
	// and its input characters ÷ 4 against a tokens-per-window limit, as
	// OpenAI documents, and advertises x-ratelimit-{limit,remaining,reset}-
	// {requests,tokens} with Go-duration resets ("1.532s").
	OpenAI Style = iota
	// Anthropic charges input tokens (characters ÷ 4) at arrival and output
	// tokens as they are produced (Output of max_tokens, below it), refuses
	// a request while either is spent, and advertises anthropic-ratelimit-
	// {requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}
	// with RFC 3339 resets and remaining tokens rounded to the nearest
	// thousand; tokens-* repeat whichever token limit binds.
	Anthropic
)

// Server is the fake API. Set its fields before serving; it is safe for
// concurrent use.
type Server struct {
	Style Style
	// Window is each limit's fixed window, in whole seconds for
	// Anthropic (whose resets are whole seconds). Windows are aligned to
	// multiples of Window since the Unix epoch.
	Window time.Duration
	// Requests and Tokens are the per-model limits per window (Tokens for
	// OpenAI); InputTokens and OutputTokens for Anthropic.
	Requests, Tokens, InputTokens, OutputTokens int
	// Latency is how long a request takes to answer.
	Latency time.Duration
	// Output is the output tokens a request of maxTokens produces
	// (Anthropic); 40% of it when nil.
	Output func(maxTokens int) int

	mu     sync.Mutex
	models map[string]*model
}

type model struct {
	start                      time.Time // of the current window
	requests, tokens, in, out  int       // spent in it
	windows                    []Window
	firstResponse              time.Time
	limited, limitedAfterFirst int
}

// Window is what one window of one model admitted.
type Window struct {
	Start    time.Time
	Requests int
	// Tokens is what OpenAI charged (max of max_tokens and the estimate);
	// InputTokens and OutputTokens what Anthropic counted.
	Tokens, InputTokens, OutputTokens int
}

// Counts is what the server saw for one model.
type Counts struct {
	Limited int
	// LimitedAfterFirst counts 429s to requests that arrived after the
	// model's first response was sent: the ones a client that learns from
	// headers should have avoided.
	LimitedAfterFirst int
	Windows           []Window
}

// Counts returns what the server saw for model.
func (s *Server) Counts(modelName string) Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.models[modelName]
	if m == nil {
		return Counts{}
	}
	return Counts{Limited: m.limited, LimitedAfterFirst: m.limitedAfterFirst, Windows: append([]Window(nil), m.windows...)}
}

// request is the part of a chat request the server reads.
type request struct {
	Model     string            `json:"model"`
	System    json.RawMessage   `json:"system"`
	Messages  []json.RawMessage `json:"messages"`
	MaxTokens int               `json:"max_tokens"`
}

// ServeHTTP answers one chat request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var req request
	if r.Method != http.MethodPost || json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req) != nil || req.Model == "" {
		http.Error(w, `{"error":{"type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	input := (chars(req.System) + messagesChars(req.Messages) + 3) / 4
	s.mu.Lock()
	m := s.model(req.Model, arrived)
	cost, ok := s.admit(m, input, req.MaxTokens)
	if !ok {
		m.limited++
		if !m.firstResponse.IsZero() && arrived.After(m.firstResponse) {
			m.limitedAfterFirst++
		}
		s.headers(w.Header(), m, arrived)
		retry := m.start.Add(s.Window).Sub(arrived)
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = fmt.Fprintf(w, `{"error":{"type":"rate_limit_error","message":"rate limit reached for %s"}}`, req.Model)
		return
	}
	s.mu.Unlock()

	time.Sleep(s.Latency)
	output := cost
	if s.Style == Anthropic {
		output = s.output(req.MaxTokens)
	}
	done := time.Now()
	s.mu.Lock()
	m = s.model(req.Model, done)
	if s.Style == Anthropic {
		// Output is counted as it is produced: in the window it ends in.
		m.out += output
		m.windows[len(m.windows)-1].OutputTokens += output
	}
	s.headers(w.Header(), m, done)
	if m.firstResponse.IsZero() {
		m.firstResponse = time.Now()
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"model":%q,"usage":{"input_tokens":%d,"output_tokens":%d}}`, req.Model, input, output)
}

// model returns the state of a model at t, entering a new window when t
// is past the current one. The caller holds s.mu.
func (s *Server) model(name string, t time.Time) *model {
	if s.models == nil {
		s.models = make(map[string]*model)
	}
	m := s.models[name]
	if m == nil {
		m = &model{}
		s.models[name] = m
	}
	if start := t.Truncate(s.Window); m.start.Before(start) {
		m.start, m.requests, m.tokens, m.in, m.out = start, 0, 0, 0, 0
		m.windows = append(m.windows, Window{Start: start})
	}
	return m
}

// admit charges a request that arrives and reports whether it fits; cost
// is what OpenAI charges it in tokens. The caller holds s.mu.
func (s *Server) admit(m *model, input, maxTokens int) (cost int, ok bool) {
	if m.requests >= s.Requests {
		return 0, false
	}
	win := &m.windows[len(m.windows)-1]
	switch s.Style {
	case Anthropic:
		if m.in+input > s.InputTokens || m.out >= s.OutputTokens {
			return 0, false
		}
		m.in += input
		win.InputTokens += input
	default:
		cost = max(maxTokens, input)
		if m.tokens+cost > s.Tokens {
			return 0, false
		}
		m.tokens += cost
		win.Tokens += cost
	}
	m.requests++
	win.Requests++
	return cost, true
}

func (s *Server) output(maxTokens int) int {
	if s.Output != nil {
		return min(max(s.Output(maxTokens), 0), maxTokens)
	}
	return maxTokens * 2 / 5
}

// headers writes what the server advertises at t. The caller holds s.mu.
func (s *Server) headers(h http.Header, m *model, t time.Time) {
	end := m.start.Add(s.Window)
	h.Set("Date", t.UTC().Format(http.TimeFormat))
	if s.Style == OpenAI {
		reset := max(end.Sub(t), 0).Round(time.Millisecond).String()
		h.Set("x-ratelimit-limit-requests", strconv.Itoa(s.Requests))
		h.Set("x-ratelimit-remaining-requests", strconv.Itoa(max(s.Requests-m.requests, 0)))
		h.Set("x-ratelimit-reset-requests", reset)
		h.Set("x-ratelimit-limit-tokens", strconv.Itoa(s.Tokens))
		h.Set("x-ratelimit-remaining-tokens", strconv.Itoa(max(s.Tokens-m.tokens, 0)))
		h.Set("x-ratelimit-reset-tokens", reset)
		return
	}
	reset := end.UTC().Format(time.RFC3339)
	set := func(name string, limit, remaining int, round bool) {
		remaining = max(remaining, 0)
		if round {
			remaining = (remaining + 500) / 1000 * 1000
		}
		h.Set("anthropic-ratelimit-"+name+"-limit", strconv.Itoa(limit))
		h.Set("anthropic-ratelimit-"+name+"-remaining", strconv.Itoa(remaining))
		h.Set("anthropic-ratelimit-"+name+"-reset", reset)
	}
	set("requests", s.Requests, s.Requests-m.requests, false)
	set("input-tokens", s.InputTokens, s.InputTokens-m.in, true)
	set("output-tokens", s.OutputTokens, s.OutputTokens-m.out, true)
	// tokens-* is whichever of the two has the smaller share left.
	if float64(s.InputTokens-m.in)/float64(s.InputTokens) < float64(s.OutputTokens-m.out)/float64(s.OutputTokens) {
		set("tokens", s.InputTokens, s.InputTokens-m.in, true)
	} else {
		set("tokens", s.OutputTokens, s.OutputTokens-m.out, true)
	}
}

// messagesChars counts the characters of the text of chat messages.
func messagesChars(msgs []json.RawMessage) int {
	n := 0
	for _, raw := range msgs {
		var msg struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(raw, &msg) == nil {
			n += chars(msg.Content)
		}
	}
	return n
}

// chars counts the characters of a string, or of the text blocks of a
// list of content blocks.
func chars(raw json.RawMessage) int {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return utf8.RuneCountInString(s)
	}
	var blocks []struct {
		Text string `json:"text"`
	}
	n := 0
	if json.Unmarshal(raw, &blocks) == nil {
		for _, b := range blocks {
			n += utf8.RuneCountInString(b.Text)
		}
	}
	return n
}
