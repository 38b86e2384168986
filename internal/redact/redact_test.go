package redact

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no secret", "redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"not a URL", "localhost:6379", "localhost:6379"},
		{"file name", "/etc/ssl/ca.pem", "/etc/ssl/ca.pem"},
		{"password", "redis://admin:S3cret@db:6379/2", "redis://admin:xxxxx@db:6379/2"},
		{"empty user", "redis://:S3cret@db:6379", "redis://:xxxxx@db:6379"},
		{"escaped password", "rediss://u:p%40ss%2Fw@db:6380", "rediss://u:xxxxx@db:6380"},
		{"user only", "redis://default@db:6379", "redis://default@db:6379"},
		{"cluster seeds kept", "redis://u:S3cret@h1:1?addr=h2:2&addr=h3:3", "redis://u:xxxxx@h1:1?addr=h2:2&addr=h3:3"},
		{"sentinel", "redis+sentinel://u:S3cret@s1:1,s2:2/mymaster/1", "redis+sentinel://u:xxxxx@s1:1,s2:2/mymaster/1"},
		{"query password", "redis://db:6379?password=S3cret&db=1", "redis://db:6379?password=xxxxx&db=1"},
		{"query names by substring", "redis://db?sentinel_password=a&X-Api-Key=b&access_token=c&Auth=d&client_secret=e&sig=f&pwd=g&credentials=h&dial_timeout=3s",
			"redis://db?sentinel_password=xxxxx&X-Api-Key=xxxxx&access_token=xxxxx&Auth=xxxxx&client_secret=xxxxx&sig=xxxxx&pwd=xxxxx&credentials=xxxxx&dial_timeout=3s"},
		{"escaped query name", "redis://db?pass%77ord=S3cret", "redis://db?pass%77ord=xxxxx"},
		{"unparsable", "redis://user:S3cret@[::1", "redis://xxxxx@[::1"},
		{"unparsable, '@' and '/' in the password", "redis://user:S3/c@ret@[::1/0", "redis://xxxxx@[::1/0"},
		{"unparsable query", "redis://[::1?password=S3cret", "redis://[::1?xxxxx"},
		{"unparsable with space", "redis://u:my S3cret@h:1", "redis://xxxxx@h:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := URL(tc.in); got != tc.want {
				t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"bare", "cannot reach Redis at redis://u:S3cret@db:6379/0: refused", "cannot reach Redis at redis://u:xxxxx@db:6379/0: refused"},
		{"trailing punctuation", "see redis://u:S3cret@db:1.", "see redis://u:xxxxx@db:1."},
		{"url.Error", `parse "redis://u:S3cret@[::1": missing ']' in host`, `parse "redis://xxxxx@[::1": missing ']' in host`},
		{"quoted with a space", `parse "redis://u:my S3cret@h:1": net/url: invalid userinfo`, `parse "redis://xxxxx@h:1": net/url: invalid userinfo`},
		{"two", "a redis://u:S3cret@h1 b rediss://v:T0ken@h2", "a redis://u:xxxxx@h1 b rediss://v:xxxxx@h2"},
		{"none", "connection refused", "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Text(tc.in); got != tc.want {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestError(t *testing.T) {
	//lint:ignore SA1007 the URL is malformed on purpose: its parse error quotes it, secret included
	_, perr := url.Parse("redis://user:S3cret@[::1")
	sentinel := errors.New("bad Redis URL")
	wrapped := fmt.Errorf("%w: %w", sentinel, perr)
	tests := []struct {
		name string
		err  error
	}{
		{"url.Error", perr},
		{"wrapped url.Error", wrapped},
		{"message", fmt.Errorf("cannot reach Redis at %s", "redis://u:S3cret@h:1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Error(tc.err)
			if strings.Contains(got.Error(), "S3cret") || !strings.Contains(got.Error(), Mask) {
				t.Fatalf("Error(%q) = %q", tc.err, got)
			}
		})
	}
	if !errors.Is(Error(wrapped), sentinel) {
		t.Error("the redacted error lost its chain")
	}
	var ue *url.Error
	if !errors.As(Error(perr), &ue) {
		t.Error("errors.As cannot find the *url.Error any more")
	}
	if Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
	plain := errors.New("connection refused")
	if Error(plain) != plain {
		t.Error("an error without secrets was replaced")
	}
}

func TestSecrets(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"redis://db:6379/0", nil},
		{"localhost:6379", nil},
		{"redis://u:S3cret@db:1", []string{"S3cret"}},
		{"redis://u:p%40ss@db:1", []string{"p%40ss", "p@ss"}},
		{"redis://db:1?password=S3cret&addr=h2:2&token=T0k%2Ben", []string{"S3cret", "T0k%2Ben", "T0k+en"}},
		{"redis://u:S3/c@ret@[::1/0", []string{"S3/c@ret"}},
		{"redis://T0ken@[::1", []string{"T0ken"}},
	}
	for _, tc := range tests {
		got := Secrets(tc.in)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Secrets(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, "S3cret", "S3cretLonger", "db", "")
	msg := "S3cretLonger and S3cret in db\n"
	n, err := fmt.Fprint(w, msg)
	if err != nil || n != len(msg) {
		t.Fatalf("Write returned %d, %v; want %d, nil", n, err, len(msg))
	}
	if got, want := buf.String(), "xxxxx and xxxxx in db\n"; got != want {
		t.Fatalf("wrote %q, want %q (short secrets are left to URL)", got, want)
	}
}
