package httpclient

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"strings"

	srl "github.com/smartratelimit/smartratelimit"
)

// RequestCost is what one request costs beyond being one request: its
// costs in other units (tokens, for an LLM API) and, for an API that
// limits each model on its own, the model whose budget it spends. Model
// becomes part of the request's key ("api.openai.com|gpt-4.1"), so that
// spending one model's budget never blocks another's.
type RequestCost struct {
	Model string
	Costs []srl.Cost
}

// CostFunc tells what req costs. body is the request's body, or its first
// MaxCostBody bytes, read without consuming it; nil when there is none or
// it cannot be read without consuming it. ok false means the request costs
// one request and nothing else.
type CostFunc func(req *http.Request, body []byte) (cost RequestCost, ok bool)

// MaxCostBody bounds what the Transport reads of a request's body to
// estimate its cost; a longer body is estimated from that prefix only if
// the cost function can (EstimateLLM cannot, and counts one request).
const MaxCostBody = 1 << 20

type costKey struct{}

// WithRequestCost returns a context whose request, sent through a
// Transport, costs c instead of what the Transport's CostFunc says: for a
// caller that knows better (a tokenizer's count, a batch's size).
func WithRequestCost(ctx context.Context, c RequestCost) context.Context {
	return context.WithValue(ctx, costKey{}, c)
}

// WithCost sets how a request's cost is told (see CostFunc). Default
// EstimateLLM; pass NoCost to count every request as one request only.
func WithCost(f CostFunc) Option {
	return func(c *config) {
		if f == nil {
			c.fail("nil cost func (pass NoCost to count requests only)")
			return
		}
		c.cost = f
	}
}

// NoCost is the CostFunc of a client that counts requests only.
func NoCost(*http.Request, []byte) (RequestCost, bool) { return RequestCost{}, false }

// EstimateLLM is the default CostFunc. For a JSON POST whose body looks
// like an OpenAI, Azure OpenAI, Groq or Anthropic request (a "model", and
// "messages", "input", "prompt" or "system"), it estimates as the providers
// document: input tokens from the characters of the text content, divided
// by 4 and rounded up; output tokens from "max_tokens",
// "max_completion_tokens" or "max_output_tokens" (times "n" when several
// choices are asked for). It charges them in smartratelimit's
// UnitInputTokens and UnitOutputTokens, and their sum in UnitTokens: the
// most any of these providers counts at arrival (OpenAI counts the larger
// of the two, Azure the sum). An Anthropic request (an anthropic-version
// header, or a host under anthropic.com) is not charged in UnitTokens:
// Anthropic's tokens-* headers repeat whichever of its input and output
// limits binds, so the sum would charge one budget twice. The model names
// the budget. Any other request costs one request.
//
// The estimate is spent at admission, atomically with everything else, and
// settled by what the provider's responses say is left (see the package
// documentation): an over-estimate does not hold the window's budget for
// longer than a response takes, an under-estimate is caught up.
func EstimateLLM(req *http.Request, body []byte) (RequestCost, bool) {
	if req.Method != http.MethodPost || len(body) == 0 || !jsonContent(req.Header.Get("Content-Type")) {
		return RequestCost{}, false
	}
	b, ok := scanChat(body)
	if !ok || !validModel(b.model) || !b.text {
		return RequestCost{}, false
	}
	in := (b.chars + 3) / 4
	out := int64(0)
	for i, m := range b.max {
		if b.hasMax[i] && m > 0 {
			out = m
			break
		}
	}
	if b.hasN && b.n > 1 && b.n <= 128 {
		out *= b.n
	}
	in, out = min(in, srl.MaxCount/2), min(out, srl.MaxCount/2)
	costs := []srl.Cost{
		{Unit: srl.UnitTokens, N: int(in + out)},
		{Unit: srl.UnitInputTokens, N: int(in)},
		{Unit: srl.UnitOutputTokens, N: int(out)},
	}
	if anthropic(req) {
		costs = costs[1:]
	}
	return RequestCost{Model: b.model, Costs: costs}, true
}

// anthropic reports a request to Anthropic's API, which requires the
// anthropic-version header.
func anthropic(req *http.Request) bool {
	if req.Header.Get("Anthropic-Version") != "" {
		return true
	}
	if req.URL == nil {
		return false
	}
	h := req.URL.Hostname()
	return h == "anthropic.com" || strings.HasSuffix(h, ".anthropic.com")
}

func jsonContent(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || len(mt) > 5 && mt[len(mt)-5:] == "+json")
}

// validModel accepts the model names providers use ("gpt-4.1",
// "claude-sonnet-4-5", "llama-3.3-70b-versatile", "openai/gpt-oss-120b",
// "models/gemini-2.5-pro"), so that a body cannot write an arbitrary
// string into keys.
func validModel(m string) bool {
	if m == "" || len(m) > 64 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@') {
			return false
		}
	}
	return true
}

// requestCost tells req's cost: the context's, else the CostFunc's on the
// body, which it reads without consuming (GetBody, or a bounded read ahead
// that out replays). out is the request to send: req itself, or a shallow
// copy whose body replays what was read.
func (t *Transport) requestCost(req *http.Request) (cost RequestCost, out *http.Request) {
	if c, ok := req.Context().Value(costKey{}).(RequestCost); ok {
		return c, req
	}
	out = req
	var body []byte
	if req.Body != nil && req.Body != http.NoBody && req.Method == http.MethodPost && jsonContent(req.Header.Get("Content-Type")) {
		if req.GetBody != nil {
			if rc, err := req.GetBody(); err == nil {
				body, _ = io.ReadAll(io.LimitReader(rc, MaxCostBody+1))
				_ = rc.Close()
			}
		} else {
			// A body that cannot be rebuilt is read ahead and replayed.
			prefix, err := io.ReadAll(io.LimitReader(req.Body, MaxCostBody+1))
			out = req.Clone(req.Context())
			var rest io.Reader = req.Body
			if err != nil {
				rest = errReader{err}
			}
			out.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(prefix), rest), closer: req.Body}
			body = prefix
		}
		if len(body) > MaxCostBody {
			body = body[:MaxCostBody]
		}
	}
	if c, ok := t.cfg.cost(req, body); ok {
		if !validModel(c.Model) {
			c.Model = ""
		}
		return c, out
	}
	return RequestCost{}, out
}

type replayBody struct {
	io.Reader
	closer io.Closer
}

func (b *replayBody) Close() error { return b.closer.Close() }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
