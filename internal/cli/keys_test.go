package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// Keys the limiter stores hashed, plain keys that would spoof a terminal,
// and names no limiter writes but that sit under the prefix all the same.
var (
	longKey   = "api.example.com|" + strings.Repeat("tenant-", 30)
	hostile   = "moc.elgoog\u202e.evil.example" // U+202E turns the rest around
	oddKeys   = []string{longKey, "tenant a|api", "{braced}", "#hash-like", "bad\xffutf8", hostile, "zero\u200bwidth", `back\slash`, `"quoted"`, "-dash"}
	foreigns  = map[string]string{"x y": "foreign with a space", "\xfe": "foreign invalid UTF-8", "tab\there": "foreign control byte", "": "foreign empty"}
	plainKeys = []string{"api.github.com", "bücher.example"}
)

// unsafeRune reports a rune that may not reach a terminal as is.
func unsafeRune(r rune) bool { return r != ' ' && !unicode.IsPrint(r) || r == utf8.RuneError }

func TestKeysPrintsWhatStatusAndResetFind(t *testing.T) {
	all := append(append([]string{}, plainKeys...), oddKeys...)
	url, rdb := seeded(t, all...)
	ctx := context.Background()
	// Foreign names: a real state renamed to a name RedisKey never makes.
	for name := range foreigns {
		src := redislimit.RedisKey("srl:", "api.github.com")
		if err := rdb.Copy(ctx, src, "srl:{"+name+"}", 0, false).Err(); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errOut := runCmd(t, "keys", "--redis", url)
	if code != 0 {
		t.Fatalf("keys: exit %d %s", code, errOut)
	}
	for _, r := range out {
		if r != '\n' && unsafeRune(r) {
			t.Fatalf("keys printed %U:\n%q", r, out)
		}
	}
	printed := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if want := len(all) + len(foreigns); len(printed) != want {
		t.Fatalf("keys printed %d keys, want %d:\n%s", len(printed), want, out)
	}
	var asJSON []string
	code, out, _ = runCmd(t, "keys", "--json", "--redis", url)
	if code != 0 || json.Unmarshal([]byte(out), &asJSON) != nil || strings.Join(asJSON, "\n") != strings.Join(printed, "\n") {
		t.Fatalf("keys --json: exit %d, %q; want the same names as the text: %q", code, out, printed)
	}

	for _, k := range printed {
		t.Run(k, func(t *testing.T) {
			code, out, errOut := runCmd(t, "status", "--redis", url, "--", k)
			if code != 0 || !strings.Contains(out, "limit 60/1m0s") {
				t.Fatalf("status %q: exit %d\n%s%s", k, code, out, errOut)
			}
			for _, r := range out + errOut {
				if r != '\n' && r != '\t' && unsafeRune(r) {
					t.Fatalf("status printed %U:\n%q", r, out+errOut)
				}
			}
			code, out, _ = runCmd(t, "status", "--json", "--redis", url, "--", k)
			var st []statusJSON
			if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 || !st[0].Found || st[0].Key != k {
				t.Fatalf("status --json %q: exit %d, %s", k, code, out)
			}
			if code, out, errOut := runCmd(t, "reset", "--yes", "--redis", url, "--", k); code != 0 {
				t.Fatalf("reset %q: exit %d\n%s%s", k, code, out, errOut)
			}
			if code, _, errOut := runCmd(t, "status", "--redis", url, "--", k); code != 1 || !strings.Contains(errOut, "no state") {
				t.Fatalf("status %q after reset: exit %d %s", k, code, errOut)
			}
		})
	}
	if code, out, _ := runCmd(t, "keys", "--redis", url); code != 0 || out != "" {
		t.Fatalf("keys after every reset: exit %d %q", code, out)
	}
}

// A key as the code names it still works, whatever its stored form.
func TestStatusByTheKeyItself(t *testing.T) {
	url, _ := seeded(t, oddKeys...)
	for _, k := range oddKeys {
		if code, out, errOut := runCmd(t, "status", "--redis", url, "--", k); code != 0 || !strings.Contains(out, "limit 60/1m0s") {
			t.Errorf("status %q: exit %d\n%s%s", k, code, out, errOut)
		}
	}
}

func TestShownKeyRoundTrips(t *testing.T) {
	tests := []struct{ stored, shown string }{
		{"api.github.com", "api.github.com"},
		{"bücher.example", "bücher.example"},
		{"#408e62a5f5e4d1c0b2a3f4e5d6c7b8a9", "#408e62a5f5e4d1c0b2a3f4e5d6c7b8a9"},
		{hostile, `moc.elgoog\u202e.evil.example`},
		{"a b", `a\x20b`},
		{"tab\there", `tab\there`},
		{"\xfe", `\xfe`},
		{`back\slash`, `back\\slash`},
		{"", `""`},
		{"\x1b[31mred", `\x1b[31mred`},
	}
	for _, tc := range tests {
		if got := shownKey(tc.stored); got != tc.shown {
			t.Errorf("shownKey(%q) = %q, want %q", tc.stored, got, tc.shown)
		}
		if got := readKeys(tc.shown); got[0] != tc.stored {
			t.Errorf("readKeys(%q)[0] = %q, want %q", tc.shown, got[0], tc.stored)
		}
	}
}

// A model's key shows every unit its server advertised.
func TestStatusShowsEveryUnit(t *testing.T) {
	url, rdb := seeded(t)
	l := redislimit.New(rdb)
	defer l.Close()
	key := "api.openai.com|gpt-4.1"
	if err := l.Observe(context.Background(), key, srl.Observation{Limit: 500, Remaining: 499, Reset: time.Second,
		Quotas: []srl.QuotaObservation{{Unit: srl.UnitTokens, Limit: 30000, Remaining: 27000, Reset: 6 * time.Second}}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "status", "--redis", url, key)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{`server quota\s+499 of 500 left`, `server quota \(tokens\)\s+27000 of 30000 left, resets in [56]\.\d+s`, `utilization\s+10%`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	code, out, _ = runCmd(t, "status", "--json", "--redis", url, key)
	var st []statusJSON
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st) != 1 || len(st[0].Quotas) != 2 ||
		st[0].Quotas[1].Unit != srl.UnitTokens || st[0].Quotas[1].Remaining != 27000 {
		t.Fatalf("status --json: exit %d, %v, %s", code, err, out)
	}
}
