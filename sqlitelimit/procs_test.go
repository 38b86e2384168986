package sqlitelimit

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Tests in this file run the store in several OS processes at once: the
// helper in internal/racer, built once per test binary.

var (
	racerOnce sync.Once
	racerPath string
	racerErr  error
)

func racerBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs helper processes")
	}
	racerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sqlitelimit-racer-")
		if err != nil {
			racerErr = err
			return
		}
		racerPath = filepath.Join(dir, "racer")
		out, err := exec.Command("go", "build", "-o", racerPath, "./internal/racer").CombinedOutput()
		if err != nil {
			racerErr = err
			racerPath = string(out)
		}
	})
	if racerErr != nil {
		t.Fatalf("building the helper: %v\n%s", racerErr, racerPath)
	}
	return racerPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if racerPath != "" && racerErr == nil {
		_ = os.RemoveAll(filepath.Dir(racerPath))
	}
	os.Exit(code)
}

// proc is one helper process.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	lines  []string
	done   chan struct{}
	stderr strings.Builder
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(racerBinary(t), args...), done: make(chan struct{})}
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		_ = p.cmd.Wait()
	})
	return p
}

func (p *proc) go_() { _, _ = io.WriteString(p.stdin, "go\n") }

// count is how many lines equal s.
func (p *proc) count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if l == s {
			n++
		}
	}
	return n
}

// wait waits for the process to end and fails t unless it succeeded.
func (p *proc) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("a helper process did not finish in 60s")
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("helper %v: %v\n%s", p.cmd.Args[1:], err, p.stderr.String())
	}
}

// waitFor polls until cond holds, for at most 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func dbFile(t *testing.T) (path, url string) {
	path = filepath.Join(t.TempDir(), "shared.db")
	// Create the schema first, so the racers do not all migrate at once
	// (they may: the migration is one transaction, tested below).
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	return path, "sqlite:///" + path // an absolute path: sqlite:////tmp/...
}

func integrity(t *testing.T, path string) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var res string
	if err := s.conn.QueryRowContext(context.Background(), "PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q %v", res, err)
	}
}

// spent is what the store says was spent of a rate-per-hour budget.
func spent(t *testing.T, path, key string, rate int, per time.Duration) int {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Status(context.Background(), key, srl.Every(rate, per).WithBurst(rate))
	if err != nil {
		t.Fatal(err)
	}
	return rate - st.Limits[0].Remaining
}

// Processes racing for 20 per hour are admitted exactly 20 times in total.
func TestProcessesShareOneBudget(t *testing.T) {
	path, url := dbFile(t)
	var procs []*proc
	for i := 0; i < 6; i++ {
		procs = append(procs, startProc(t, "race", "-url", url, "-key", "api", "-rate", "20", "-per", "1h"))
	}
	for _, p := range procs {
		p.go_()
	}
	total := 0
	for _, p := range procs {
		p.wait(t)
		total += p.count("admit")
	}
	if total != 20 {
		t.Fatalf("%d admitted across %d processes, want exactly 20", total, len(procs))
	}
	if n := spent(t, path, "api", 20, time.Hour); n != 20 {
		t.Fatalf("the store counts %d spent, the processes were admitted 20", n)
	}
	integrity(t, path)
}

// Processes opening a fresh file at once all migrate it, one of them for
// real.
func TestProcessesCreateTheFileTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	var procs []*proc
	for i := 0; i < 4; i++ {
		procs = append(procs, startProc(t, "race", "-url", "sqlite:///"+path, "-key", "k", "-rate", "8", "-per", "1h"))
	}
	for _, p := range procs {
		p.go_()
	}
	total := 0
	for _, p := range procs {
		p.wait(t)
		total += p.count("admit")
	}
	if total != 8 {
		t.Fatalf("%d admitted, want 8", total)
	}
}

// A quota one process learned is honoured by the next, after the first
// has exited.
func TestALearnedQuotaOutlivesItsProcess(t *testing.T) {
	path, url := dbFile(t)
	startProc(t, "observe", "-url", url, "-key", "api.example.com", "-limit", "100", "-remaining", "3", "-reset", "1h").wait(t)

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(context.Background(), "api.example.com")
	_ = s.Close()
	if err != nil || !st.Quota.Known || st.Quota.Limit != 100 || st.Quota.Remaining != 3 {
		t.Fatalf("status after the observing process exited: %+v %v", st, err)
	}
	p := startProc(t, "race", "-url", url, "-key", "api.example.com", "-rate", "0")
	p.go_()
	p.wait(t)
	if n := p.count("admit"); n != 3 {
		t.Fatalf("a new process was admitted %d times against a quota of 3 left", n)
	}
	if !strings.HasPrefix(p.lines[len(p.lines)-1], "refused quota") {
		t.Fatalf("the last line %q, want a refusal by the quota", p.lines[len(p.lines)-1])
	}
}

// One racer is killed with SIGKILL while the others run, and another
// process is killed inside a transaction holding the write lock with
// uncommitted changes: nothing is lost or doubled, the file stays
// consistent, the others go on.
func TestSIGKILLMidTransaction(t *testing.T) {
	// The survivors pace themselves, so that they are still running when
	// the holder dies; 3000 a day refills one every 28.8s, never within
	// the test.
	const rate = 3000
	path, url := dbFile(t)
	var procs []*proc
	for i := 0; i < 4; i++ {
		procs = append(procs, startProc(t, "race", "-url", url, "-key", "api", "-rate", strconv.Itoa(rate), "-per", "24h", "-pause", "1ms"))
	}
	for _, p := range procs {
		p.go_()
	}
	victim := procs[0]
	waitFor(t, "the victim's first admissions", func() bool { return victim.count("admit") >= 10 })
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	_ = victim.cmd.Wait()
	if ws, ok := victim.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the victim ended with %v, not by SIGKILL", victim.cmd.ProcessState)
	}

	// A process that dies holding the write lock, its changes uncommitted.
	holder := startProc(t, "hold", "-path", path)
	waitFor(t, "the holder to take the lock", func() bool { return holder.count("holding") == 1 })
	time.Sleep(100 * time.Millisecond) // the survivors queue behind it
	atKill := 0
	for _, p := range procs[1:] {
		atKill += p.count("admit")
		select {
		case <-p.done:
			t.Fatal("a survivor finished before the holder died; the test proves nothing")
		default:
		}
	}
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-holder.done

	total := 0
	for _, p := range procs[1:] {
		p.wait(t)
		total += p.count("admit")
	}
	if total <= atKill {
		t.Fatal("the survivors made no progress after the holder died")
	}
	killed := victim.count("admit")
	total += killed
	stored := spent(t, path, "api", rate, 24*time.Hour)
	// The victim may have died between a commit and its print: that one
	// admission is spent in the store but was never used.
	if stored != rate || total > rate || total < rate-1 {
		t.Fatalf("the processes printed %d admissions (the victim %d), the store counts %d spent of %d", total, killed, stored, rate)
	}
	integrity(t, path)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if keys, err := s.Keys(context.Background()); err != nil || len(keys) != 1 || keys[0] != "api" {
		t.Fatalf("keys after the holder died: %q %v: its uncommitted changes are visible", keys, err)
	}
}
