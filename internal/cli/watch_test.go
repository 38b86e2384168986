package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
)

// cancelOn cancels a context once marker has been written through it, so
// a test can interrupt a command at a known point instead of at a time.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.cancel()
	}
	return n, err
}

// Ctrl-C is how a watch ends, and it may land in the middle of a refresh:
// that is a clean end (exit 0), not a failed query.
func TestWatchEndsCleanlyWhenInterruptedMidRefresh(t *testing.T) {
	url, _ := seeded(t, "api.github.com")
	ctx, cancel := context.WithCancel(context.Background())
	// The "---" line opens a refresh, which then runs cancelled.
	out := &cancelOn{marker: "---", cancel: cancel}
	var errOut bytes.Buffer
	code := run(ctx, []string{"status", "--watch", "--interval", "1ms", "--redis", url, "api.github.com"}, strings.NewReader(""), out, &errOut)
	cancel()
	if code != 0 || errOut.Len() != 0 {
		t.Errorf("status --watch interrupted: exit %d, stderr %q; want exit 0 and nothing on stderr", code, errOut.String())
	}
	// Without --watch an interrupted query did not finish: exit 1.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if code, _, _ := runCmdCtx(t, ctx, "status", "--redis", url, "api.github.com"); code != 1 {
		t.Errorf("status interrupted: exit %d, want 1", code)
	}
}

func runCmdCtx(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(ctx, args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}
