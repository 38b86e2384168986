package httpclient

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// referenceChat reads a body with encoding/json, the straightforward way
// scanChat must agree with.
func referenceChat(body []byte) (chat, bool) {
	var b struct {
		Model               string          `json:"model"`
		Messages            json.RawMessage `json:"messages"`
		Input               json.RawMessage `json:"input"`
		Prompt              json.RawMessage `json:"prompt"`
		System              json.RawMessage `json:"system"`
		MaxTokens           *int64          `json:"max_tokens"`
		MaxCompletionTokens *int64          `json:"max_completion_tokens"`
		MaxOutputTokens     *int64          `json:"max_output_tokens"`
		N                   *int64          `json:"n"`
	}
	if json.Unmarshal(body, &b) != nil {
		return chat{}, false
	}
	c := chat{model: b.Model}
	for _, part := range [...]json.RawMessage{b.Messages, b.Input, b.Prompt, b.System} {
		if part != nil {
			c.text = true
			c.chars += referenceText(part, 0)
		}
	}
	for i, m := range [...]*int64{b.MaxTokens, b.MaxCompletionTokens, b.MaxOutputTokens} {
		if m != nil {
			c.max[i], c.hasMax[i] = *m, true
		}
	}
	if b.N != nil {
		c.n, c.hasN = *b.N, true
	}
	return c, true
}

func referenceText(raw json.RawMessage, depth int) int64 {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || depth > textDepth {
		return 0
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return int64(utf8.RuneCountInString(s))
	case '[':
		var items []json.RawMessage
		_ = json.Unmarshal(raw, &items)
		n := int64(0)
		for _, it := range items {
			n += referenceText(it, depth+1)
		}
		return n
	case '{':
		var obj map[string]json.RawMessage
		_ = json.Unmarshal(raw, &obj)
		return referenceText(obj["text"], depth+1) + referenceText(obj["content"], depth+1)
	}
	return 0
}

var chatSeeds = []string{
	string(chatBody),
	`{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"max_tokens":5}`,
	`{"MODEL":"a","Messages":"xy","MAX_TOKENS":3,"model":"b"}`,
	`{"m\u006fdel":"esc","te\u0078t":1,"prompt":{"te\u0078t":"abc","content":["d",{"text":"ef"}]}}`,
	`{"model":"x","input":"\ud83d\ude00\ud83d\u0041\ud83d\ud83d\ude00\ud83d","max_output_tokens":-4}`,
	`{"model":"x","system":"caf\u00e9 \xff\xfe ok","n":3,"max_completion_tokens":7}`,
	`{"model":null,"messages":null,"max_tokens":null,"n":null}`,
	`{"model":"x","messages":[[[[[[[[[["deep"]]]]]]]]]]}`,
	`{"model":"x","max_tokens":5.0,"messages":"a"}`,
	`{"model":"x","max_tokens":"5","messages":"a"}`,
	`{"model":1,"messages":"a"}`,
	`{"model":"x","messages":"a"} trailing`,
	`{"model":"x","messages":"a",}`,
	`{"model":"x" "messages":"a"}`,
	`{"model":"x","messages":"a\u00"}`,
	` {"model":"x","messages":[1,true,false,null,-0.5e+3,{}]} `,
	`{"model":"x","messages":"tab	inside"}`,
	`{"model":"x","max_tokens":99999999999999999999,"messages":"a"}`,
	`{"model":"x","messages":{"text":"a","text":"bcd","content":{"content":"ef"}}}`,
	`{"model":"ſystem","ſystem":"long s"}`,
	`[]`, `"str"`, `{`, `{}`, ``, `{"model":"x","messages":[`,
}

func TestScanChatAgreesWithEncodingJSON(t *testing.T) {
	for _, body := range chatSeeds {
		checkScan(t, []byte(body))
	}
}

// FuzzScanChat holds the one-pass scanner to encoding/json:
//
//	go test -run '^$' -fuzz FuzzScanChat -fuzztime 1m ./httpclient/
func FuzzScanChat(f *testing.F) {
	for _, s := range chatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkScan(t, body) })
}

func checkScan(t *testing.T, body []byte) {
	t.Helper()
	got, gotOK := scanChat(body)
	want, wantOK := referenceChat(body)
	if gotOK != wantOK || gotOK && got != want {
		t.Fatalf("scanChat(%q) = %+v, %v; encoding/json reads %+v, %v", body, got, gotOK, want, wantOK)
	}
}

// A body nested past what encoding/json accepts is refused, not walked
// into a stack overflow.
func TestScanChatBoundsNesting(t *testing.T) {
	deep := `{"model":"x","messages":` + strings.Repeat("[", maxDepth+5) + strings.Repeat("]", maxDepth+5) + `}`
	checkScan(t, []byte(deep))
}
