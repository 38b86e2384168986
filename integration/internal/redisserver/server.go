// Package redisserver starts real redis-server processes on loopback for
// tests: single servers that a test may kill and restart on the same port.
// It needs the redis-server binary on PATH (Debian: apt-get install
// redis-server).
package redisserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Binary is the server binary looked up on PATH.
const Binary = "redis-server"

// Available reports whether redis-server can be started here.
func Available() bool {
	_, err := exec.LookPath(Binary)
	return err == nil
}

// Server is one redis-server process on a fixed loopback port.
type Server struct {
	Addr string
	Port int
	Dir  string
	args []string
	// cluster says the server is a cluster node, whose bus listens 10,000
	// ports above Port: Port must be at most 55535 and that port free too.
	cluster bool
	// conf, when set, is a config file passed before the arguments (for
	// sentinels, which rewrite it).
	conf string
	// TLS, when set, is how clients reach the server (it listens on TLS
	// only).
	TLS *tls.Config

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs a fresh redis-server on a free port with persistence off and
// the given extra arguments (e.g. "--requirepass", "x"). The server is
// killed when the test ends.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	return startServer(tb, &Server{args: extra})
}

// startServer fills in s's port and directory and starts it. A server
// that exits before it answers (its port taken in the moment since it was
// free) is started again on another port, up to three times.
func startServer(tb testing.TB, s *Server) *Server {
	tb.Helper()
	if s.Dir == "" {
		s.Dir = tb.TempDir()
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if s.cluster {
			s.Port, err = freeClusterPort()
		} else {
			s.Port, err = freePort()
		}
		if err != nil {
			break
		}
		s.Addr = "127.0.0.1:" + strconv.Itoa(s.Port)
		if err = s.start(); !errors.Is(err, errExited) {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redisserver: %v", err)
	}
	tb.Cleanup(s.Kill)
	return s
}

// StartProcess is Start for use outside a test (TestMain); the caller must
// call Kill.
func StartProcess(dir string, extra ...string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, Dir: dir, args: extra}
	return s, s.start()
}

func (s *Server) start() error {
	port := []string{"--port", strconv.Itoa(s.Port)}
	if s.TLS != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.Port)}
	}
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(args, port...)
	args = append(args,
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.Dir,
		"--protected-mode", "no", "--logfile", filepath.Join(s.Dir, fmt.Sprintf("redis-%d.log", s.Port)))
	args = append(args, s.args...)
	cmd := exec.Command(Binary, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", Binary, err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return s.waitReady(10*time.Second, exited)
}

// errExited says a server ended before it answered.
var errExited = errors.New("redis-server exited before it answered")

// waitReady polls PING until the server answers, it exits or the deadline
// passes.
func (s *Server) waitReady(d time.Duration, exited <-chan struct{}) error {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, TLSConfig: s.TLS})
	defer rdb.Close()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		// A server that demands a password is up.
		if err == nil || redis.HasErrorPrefix(err, "NOAUTH") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis at %s not ready after %v: %w (log in %s)", s.Addr, d, err, s.Dir)
		}
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			log, _ := os.ReadFile(filepath.Join(s.Dir, fmt.Sprintf("redis-%d.log", s.Port)))
			return fmt.Errorf("%w: at %s: %s", errExited, s.Addr, lastLines(log, 3))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Alive reports whether the process is running (not killed).
func (s *Server) Alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Kill stops the server at once (SIGKILL), as a crash would: nothing is
// saved, clients see their connections reset.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	// Wait until the port is free again so Restart can bind it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr, 50*time.Millisecond)
		if err != nil {
			return
		}
		_ = c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Restart starts the server again on the same port with the same
// arguments and an empty dataset and script cache, as after a crash.
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

// Client returns a go-redis client for the server, closed at test end.
func (s *Server) Client(tb testing.TB, opts *redis.Options) *redis.Client {
	tb.Helper()
	if opts == nil {
		opts = &redis.Options{}
	}
	o := *opts
	o.Addr = s.Addr
	if o.TLSConfig == nil {
		o.TLSConfig = s.TLS
	}
	c := redis.NewClient(&o)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := freePort()
	if err != nil {
		tb.Fatalf("redisserver: %v", err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("free port: unexpected address %v", l.Addr())
	}
	return addr.Port, nil
}

// freeClusterPort returns a port for a cluster node: at most 55535, with
// the port 10,000 above it (the node's bus) free as well.
func freeClusterPort() (int, error) {
	for try := 0; try < 100; try++ {
		p, err := freePort()
		if err != nil {
			return 0, err
		}
		if p > 55535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return p, nil
	}
	return 0, errors.New("free port: no port at or under 55535 with its cluster bus port free in 100 tries")
}

// lastLines returns the last n lines of a log, for an error message.
func lastLines(log []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}
