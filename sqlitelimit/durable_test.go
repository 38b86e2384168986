package sqlitelimit

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backendtest"
	"github.com/smartratelimit/smartratelimit/storage"
)

var bg = context.Background()

// A learned quota, a block and pacing are in the file: a store opened
// again on it starts from them.
func TestStateSurvivesARestart(t *testing.T) {
	clock := backendtest.NewClock(backendtest.Epoch)
	path := filepath.Join(t.TempDir(), "limits.db")
	s, err := Open(path, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	must(t, s.Observe(bg, "quota", srl.Observation{Limit: 100, Remaining: 3, Reset: time.Hour, Succeeded: true}))
	must(t, s.Observe(bg, "blocked", srl.Observation{Limited: true, RetryAfter: 30 * time.Second}))
	pace := srl.PerMinute(2).WithBurst(2)
	for i := 0; i < 2; i++ {
		if d, err := s.Allow(bg, "paced", pace); err != nil || !d.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
	}
	must(t, s.Close())

	clock.Advance(10 * time.Second)
	s, err = Open(path, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, _ := s.Status(bg, "quota"); st.Quota.Remaining != 3 || st.Quota.Limit != 100 || st.Quota.ResetAfter != time.Hour-10*time.Second {
		t.Fatalf("quota after the restart: %+v", st.Quota)
	}
	if d, _ := s.Allow(bg, "blocked"); d.Allowed || d.Cause != srl.CauseBlocked || d.RetryAfter != 20*time.Second {
		t.Fatalf("block after the restart: %+v", d)
	}
	if d, _ := s.Allow(bg, "paced", pace); d.Allowed || d.Cause != srl.CauseLimit || d.RetryAfter != 20*time.Second {
		t.Fatalf("pacing after the restart: %+v", d)
	}
	for i := 0; i < 3; i++ {
		if d, _ := s.Allow(bg, "quota"); !d.Allowed {
			t.Fatalf("admission %d of the 3 left: %+v", i, d)
		}
	}
	if d, _ := s.Allow(bg, "quota"); d.Allowed || d.Cause != srl.CauseQuota {
		t.Fatalf("past the quota: %+v", d)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	must(t, s.read(bg, func() error {
		return s.conn.QueryRowContext(bg, "SELECT count(*) FROM srl_keys").Scan(&n)
	}))
	return n
}

func pages(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	must(t, s.read(bg, func() error {
		return s.conn.QueryRowContext(bg, "PRAGMA page_count").Scan(&n)
	}))
	return n
}

// Expired keys read as absent at once and are deleted by the sweep, whose
// freed pages go back: the file stays bounded by the keys live at once.
func TestSweepKeepsTheFileBounded(t *testing.T) {
	clock := backendtest.NewClock(backendtest.Epoch)
	s := open(t, WithClock(clock.Now), WithSweepInterval(0))
	var first int
	for round := 0; round < 5; round++ {
		for i := 0; i < 2000; i++ {
			if _, err := s.Allow(bg, "r"+strconv.Itoa(round)+"-"+strconv.Itoa(i), srl.PerSecond(10)); err != nil {
				t.Fatal(err)
			}
		}
		if round == 0 {
			first = pages(t, s)
		}
		if keys, _ := s.Keys(bg); len(keys) != 2000 {
			t.Fatalf("round %d: %d live keys, want the 2000 of this round", round, len(keys))
		}
		clock.Advance(2 * time.Second) // every key's horizon plus Grace
		if keys, _ := s.Keys(bg); len(keys) != 0 {
			t.Fatalf("%d keys still live past their expiry", len(keys))
		}
		n, err := s.Sweep(bg)
		if err != nil || n != 2000 {
			t.Fatalf("round %d: swept %d (%v), want 2000", round, n, err)
		}
		if r := rows(t, s); r != 0 {
			t.Fatalf("%d rows left after the sweep", r)
		}
	}
	if p := pages(t, s); p > first {
		t.Fatalf("the file grew from %d to %d pages over rounds of the same size", first, p)
	}
	if p := pages(t, s); p > 10 {
		t.Fatalf("%d pages left with no key stored: freed pages were not returned", p)
	}
}

// The store sweeps on its own, every interval.
func TestSweepRunsOnItsOwn(t *testing.T) {
	clock := backendtest.NewClock(backendtest.Epoch)
	s := open(t, WithClock(clock.Now), WithSweepInterval(10*time.Millisecond))
	for i := 0; i < 100; i++ {
		_, _ = s.Allow(bg, "k"+strconv.Itoa(i), srl.PerSecond(10))
	}
	clock.Advance(time.Minute)
	for end := time.Now().Add(5 * time.Second); rows(t, s) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d expired rows left after 5s of sweeps every 10ms", rows(t, s))
		}
	}
}

func TestOpenRefusesWhatIsNotAStore(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	must(t, os.WriteFile(text, []byte(strings.Repeat("not a database\n", 100)), 0o600))
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	must(t, err)
	_, err = db.Exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
	must(t, err)
	must(t, db.Close())
	tagged := filepath.Join(dir, "tagged.db")
	db, err = sql.Open("sqlite", tagged)
	must(t, err)
	_, err = db.Exec("PRAGMA application_id = 42; CREATE TABLE t (x)")
	must(t, err)
	must(t, db.Close())
	newer := filepath.Join(dir, "newer.db")
	s, err := Open(newer)
	must(t, err)
	_, err = s.conn.ExecContext(bg, "PRAGMA user_version = 99")
	must(t, err)
	must(t, s.Close())

	tests := []struct {
		path   string
		target error
		want   string
	}{
		{text, ErrNotStore, "is not an SQLite database"},
		{other, ErrNotStore, "another application (tables: users)"},
		{tagged, ErrNotStore, "another application (application_id 0x2a)"},
		{newer, ErrSchemaTooNew, "schema version 99, this build reads up to 1"},
		{dir, nil, "is a directory"},
		{filepath.Join(dir, "missing", "x.db"), nil, "directory " + filepath.Join(dir, "missing") + " does not exist"},
		{filepath.Join(text, "x.db"), nil, "does not exist"},
		{"", nil, "empty path"},
		{":memory:", nil, "memory://"},
	}
	for _, tc := range tests {
		s, err := Open(tc.path)
		if err == nil {
			_ = s.Close()
			t.Errorf("%s: opened", tc.path)
			continue
		}
		if tc.target != nil && !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want %v saying %q", tc.path, err, tc.target, tc.want)
		}
	}
	// Nothing was changed: the text is still text, the other
	// application's database still has no table of ours.
	if b, _ := os.ReadFile(text); !strings.HasPrefix(string(b), "not a database") {
		t.Error("Open wrote to a file that is not a store")
	}
}

// readOnlyDir returns a directory the process cannot write to: a mode
// 0555 directory, or, for root (whom modes do not stop), a read-only
// tmpfs mounted on it.
func readOnlyDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "ro")
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.Chmod(dir, 0o555))
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	probe := filepath.Join(dir, "probe")
	if f, err := os.Create(probe); err == nil {
		_ = f.Close()
		_ = os.Remove(probe)
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
			t.Skipf("cannot make a read-only directory as uid %d: %v", os.Geteuid(), err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
	}
	return dir
}

func TestOpenInAReadOnlyDirectory(t *testing.T) {
	dir := readOnlyDir(t)
	_, err := Open(filepath.Join(dir, "limits.db"))
	if err == nil || !strings.Contains(err.Error(), "its directory "+dir+" is not writable") {
		t.Fatalf("error %v, want one saying the directory is not writable", err)
	}
}

// A row that does not decode reads as an empty key: it can neither fail
// nor poison a decision, and the next write replaces it.
func TestGarbageRowReadsAsEmpty(t *testing.T) {
	clock := backendtest.NewClock(backendtest.Epoch)
	s := open(t, WithClock(clock.Now))
	_, err := s.conn.ExecContext(bg, "INSERT INTO srl_keys VALUES ('k', 'garbage', ?), ('j', '{\"BlockedUntil\": 9000000000000000, \"Throttles\": -5}', ?)",
		backendtest.Epoch.Add(time.Hour).UnixMicro(), backendtest.Epoch.Add(time.Hour).UnixMicro())
	must(t, err)
	if d, err := s.Allow(bg, "k", srl.PerMinute(1)); err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
	if d, _ := s.Allow(bg, "k", srl.PerMinute(1)); d.Allowed {
		t.Fatal("the garbage row was not replaced by the decision's state")
	}
	// A block far past the rules' bound is held to a day.
	if d, _ := s.Allow(bg, "j"); d.Allowed || d.RetryAfter > srl.MaxHorizon {
		t.Fatalf("%+v", d)
	}
}

// While another process holds the write lock, a decision waits for at
// most the busy timeout, or its context, whichever ends first.
func TestBusyTimeoutAndContext(t *testing.T) {
	s := open(t, WithBusyTimeout(100*time.Millisecond))
	db, err := sql.Open("sqlite", s.path+"?_pragma=busy_timeout(5000)")
	must(t, err)
	defer db.Close()
	conn, err := db.Conn(bg)
	must(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(bg, "BEGIN IMMEDIATE")
	must(t, err)

	start := time.Now()
	_, err = s.Allow(bg, "k")
	if !errors.Is(err, ErrBusy) || time.Since(start) < 100*time.Millisecond || time.Since(start) > 2*time.Second {
		t.Fatalf("error %v after %v, want ErrBusy after the 100ms busy timeout", err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := s.Allow(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 90*time.Millisecond {
		t.Fatalf("error %v after %v, want the context's deadline", err, time.Since(start))
	}
	_, err = conn.ExecContext(bg, "COMMIT")
	must(t, err)
	if d, err := s.Allow(bg, "k"); err != nil || !d.Allowed {
		t.Fatalf("once the lock is free: %+v %v", d, err)
	}
}

func TestClosed(t *testing.T) {
	s := open(t)
	must(t, s.Close())
	must(t, s.Close())
	if _, err := s.Allow(bg, "k"); !errors.Is(err, srl.ErrClosed) {
		t.Fatalf("error %v, want ErrClosed", err)
	}
	if _, err := s.Status(bg, "k"); !errors.Is(err, srl.ErrClosed) {
		t.Fatalf("error %v, want ErrClosed", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []Option{WithClock(nil), WithBusyTimeout(0), WithSweepInterval(-1), WithThrottleBackoff(0, time.Second)} {
		if s, err := Open(filepath.Join(t.TempDir(), "x.db"), o); err == nil {
			_ = s.Close()
			t.Error("an invalid option was accepted")
		}
	}
}

func TestKeysAndLimits(t *testing.T) {
	s := open(t)
	_, _ = s.Allow(bg, "b", srl.PerSecond(5), srl.PerMinute(100).WithBurst(10))
	_, _ = s.Allow(bg, "a", srl.PerSecond(5))
	must(t, s.Observe(bg, "c", srl.Observation{Limit: 10, Remaining: 5, Reset: time.Minute}))
	keys, err := s.Keys(bg)
	if err != nil || strings.Join(keys, ",") != "a,b,c" {
		t.Fatalf("%q %v", keys, err)
	}
	limits, found, err := s.Limits(bg, "b")
	if err != nil || !found || len(limits) != 2 || limits[0] != srl.PerMinute(100).WithBurst(10) || limits[1] != srl.PerSecond(5) {
		t.Fatalf("%v %v %v", limits, found, err)
	}
	if limits, found, _ := s.Limits(bg, "c"); !found || len(limits) != 0 {
		t.Fatalf("a key with a quota only: %v %v", limits, found)
	}
	if _, found, _ := s.Limits(bg, "nope"); found {
		t.Fatal("an absent key was found")
	}
	must(t, s.Reset(bg, "b"))
	if _, found, _ := s.Limits(bg, "b"); found {
		t.Fatal("Reset left the key")
	}
}

func TestOpenByURL(t *testing.T) {
	t.Chdir(t.TempDir())
	b, c, err := storage.Open("sqlite:///rate_limits.db?busy_timeout=2s&sync=full&sweep_interval=0")
	if err != nil {
		t.Fatal(err)
	}
	s, ok := b.(*Store)
	if !ok || s.cfg.busyTimeout != 2*time.Second || !s.cfg.fullSync || s.cfg.sweepInterval != 0 {
		t.Fatalf("%T %+v", b, s.cfg)
	}
	if _, err := s.Allow(bg, "k"); err != nil {
		t.Fatal(err)
	}
	must(t, c.Close())
	if _, err := os.Stat("rate_limits.db"); err != nil {
		t.Fatalf("sqlite:///rate_limits.db is not in the working directory: %v", err)
	}
	for _, u := range []string{"sqlite:///x.db?busy_timeout=soon", "sqlite:///x.db?sync=maybe", "sqlite:///x.db?cache=shared", "sqlite:///x.db?sync=full&sync=normal"} {
		if _, _, err := storage.Open(u); err == nil {
			t.Errorf("%s: opened", u)
		}
	}
}
