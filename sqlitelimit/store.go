package sqlitelimit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
	"github.com/smartratelimit/smartratelimit/internal/wait"
)

// ErrBusy reports that another process held the database's write lock for
// longer than the busy timeout (WithBusyTimeout).
var ErrBusy = errors.New("sqlitelimit: database locked by another process")

// Store keeps budgets in one SQLite file shared by every process that
// opens it. It is safe for concurrent use by multiple goroutines; see the
// package documentation for the model.
type Store struct {
	cfg  config
	path string
	db   *sql.DB

	// mu serializes the store's use of its one connection: the goroutines
	// of one process never contend through SQLite's file locks, only
	// processes do.
	mu     sync.Mutex
	conn   *sql.Conn
	load   *sql.Stmt
	save   *sql.Stmt
	delete *sql.Stmt
	closed bool

	stopSweep context.CancelFunc
	swept     sync.WaitGroup
}

var _ srl.Backend = (*Store)(nil)

// Open opens the store at path, creating the file (and the schema) when it
// does not exist, and migrating an older schema forward. Every process
// that opens the same file shares its budgets. Close releases it.
//
// Open fails with a clear error, never a panic, when path is not an
// SQLite database (ErrNotStore), a database of another application
// (ErrNotStore), one written by a newer version of this package
// (ErrSchemaTooNew), or when its directory cannot be written (SQLite
// creates path-wal and path-shm beside it).
func Open(path string, opts ...Option) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	if path == "" {
		return nil, errors.New("sqlitelimit: empty path")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlitelimit: %q is not a file path; for a store private to the process use package fallback (memory://)", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitelimit: %s: %w", path, err)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("sqlitelimit: %s is a directory; give the path of a file in it", path)
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("sqlitelimit: %s: %w", path, err)
	}
	// One connection: the store serializes its own goroutines (mu).
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &Store{cfg: cfg, path: path, db: db}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.busyTimeout)
	defer cancel()
	if err := s.init(ctx); err != nil {
		_ = s.closeAll()
		return nil, s.explain(err)
	}
	if cfg.sweepInterval > 0 {
		sweepCtx, stop := context.WithCancel(context.Background())
		s.stopSweep = stop
		s.swept.Add(1)
		go s.sweepEvery(sweepCtx, cfg.sweepInterval)
	}
	return s, nil
}

// dsn is the driver's name for the file at abs. The connection's
// settings are applied by init, where SQLITE_BUSY is retried.
func dsn(abs string) string {
	return "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath()
}

// init takes the connection, checks what the file is, sets WAL mode,
// migrates the schema and prepares the statements.
func (s *Store) init(ctx context.Context) error {
	if err := s.retry(ctx, func() error {
		conn, err := s.db.Conn(ctx)
		s.conn = conn
		return err
	}); err != nil {
		return err
	}
	conn := s.conn
	exec := func(q string) error {
		return s.retry(ctx, func() error {
			_, err := conn.ExecContext(ctx, q)
			return err
		})
	}
	sync := "NORMAL"
	if s.cfg.fullSync {
		sync = "FULL"
	}
	// The busy timeout is 0: the store retries SQLITE_BUSY itself, within
	// the caller's context and with waits of microseconds, not SQLite's
	// milliseconds (see retry). The WAL file is cut back to 4 MiB after a
	// checkpoint, so a burst does not leave it at its largest.
	for _, q := range []string{"PRAGMA busy_timeout = 0", "PRAGMA synchronous = " + sync, "PRAGMA journal_size_limit = 4194304"} {
		if err := exec(q); err != nil {
			return err
		}
	}
	var h header
	if err := s.retry(ctx, func() error {
		var err error
		h, err = readHeaderAtOnce(ctx, conn)
		return err
	}); err != nil {
		return err
	}
	if err := h.check(s.path); err != nil {
		return err
	}
	if h.version == 0 {
		// Only takes effect before the first table exists: freed pages
		// are returned to the file system after each sweep.
		if err := exec("PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
			return err
		}
	}
	var mode string
	if err := s.retry(ctx, func() error {
		return conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
	}); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("cannot use write-ahead logging (journal mode %q)", mode)
	}
	if err := s.retry(ctx, func() error {
		return s.inTx(ctx, func() error { return migrate(ctx, conn, s.path) })
	}); err != nil {
		return err
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.load, "SELECT state, expire_at FROM srl_keys WHERE key = ?"},
		{&s.save, "INSERT INTO srl_keys (key, state, expire_at) VALUES (?, ?, ?) " +
			"ON CONFLICT (key) DO UPDATE SET state = excluded.state, expire_at = excluded.expire_at"},
		{&s.delete, "DELETE FROM srl_keys WHERE key = ?"},
	} {
		if err := s.retry(ctx, func() error {
			var err error
			*p.stmt, err = conn.PrepareContext(ctx, p.sql)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// explain turns what SQLite said when opening into what the caller can do
// about it.
func (s *Store) explain(err error) error {
	if errors.Is(err, ErrNotStore) || errors.Is(err, ErrSchemaTooNew) || errors.Is(err, ErrBusy) {
		return err
	}
	switch code(err) {
	case sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %s is not an SQLite database; give the store a new file, or one it created", ErrNotStore, s.path)
	case sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("%w: %s is corrupt (%v); move it away and give the store a new file", ErrNotStore, s.path, err)
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_IOERR:
		dir := filepath.Dir(s.path)
		if fi, statErr := os.Stat(dir); statErr != nil || !fi.IsDir() {
			return fmt.Errorf("sqlitelimit: cannot open %s: its directory %s does not exist", s.path, dir)
		}
		if probe, probeErr := os.CreateTemp(dir, ".sqlitelimit-probe-*"); probeErr != nil {
			return fmt.Errorf("sqlitelimit: cannot open %s: its directory %s is not writable (the store writes the file and its -wal and -shm files there): %v",
				s.path, dir, probeErr)
		} else {
			_ = probe.Close()
			_ = os.Remove(probe.Name())
		}
		return fmt.Errorf("sqlitelimit: cannot open %s for writing: %w", s.path, err)
	}
	return fmt.Errorf("sqlitelimit: opening %s: %w", s.path, err)
}

// code is the primary SQLite result code of err, or 0.
func code(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

func isBusy(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// retry runs f until it returns anything but SQLITE_BUSY, sleeping between
// tries from 20µs doubling to 2ms (jittered, so that processes do not
// retry in step), until ctx ends or the busy timeout has passed.
func (s *Store) retry(ctx context.Context, f func() error) error {
	start := time.Now()
	pause := 20 * time.Microsecond
	for {
		err := f()
		if !isBusy(err) {
			return err
		}
		if time.Since(start) >= s.cfg.busyTimeout {
			return fmt.Errorf("%w: %s, for %v (the busy timeout)", ErrBusy, s.path, s.cfg.busyTimeout)
		}
		if err := wait.Sleep(ctx, jitter(pause)); err != nil {
			return err
		}
		pause = min(2*pause, 2*time.Millisecond)
	}
}

// jitter returns a duration in [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(time.Now().UnixNano()%int64(d))
}

// inTx runs f inside BEGIN IMMEDIATE … COMMIT on the store's connection,
// which mu must guard. IMMEDIATE takes the write lock before anything is
// read, so two processes can never decide from the same state; SQLITE_BUSY
// comes back at BEGIN, before anything was done. Every other failure rolls
// back: nothing of a decision is written unless all of it is.
//
// The statements run without the caller's context: an interruption
// between a write and COMMIT would leave the outcome to guesswork, and
// each statement takes microseconds. The context bounds the waits for
// the lock (retry).
func (s *Store) inTx(_ context.Context, f func() error) error {
	bg := context.Background()
	if _, err := s.conn.ExecContext(bg, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := f(); err != nil {
		_, _ = s.conn.ExecContext(bg, "ROLLBACK")
		return err
	}
	if _, err := s.conn.ExecContext(bg, "COMMIT"); err != nil {
		// A failed COMMIT may leave the transaction open; nothing of it
		// was written.
		_, _ = s.conn.ExecContext(bg, "ROLLBACK")
		return err
	}
	return nil
}

// write runs f in one write transaction, retried while the database is
// busy.
func (s *Store) write(ctx context.Context, f func() error) error {
	return s.retry(ctx, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return s.errClosed()
		}
		return s.inTx(ctx, f)
	})
}

// read runs f outside any transaction: one SELECT reads a consistent
// snapshot in WAL mode, without waiting for writers.
func (s *Store) read(ctx context.Context, f func() error) error {
	return s.retry(ctx, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return s.errClosed()
		}
		return f()
	})
}

func (s *Store) errClosed() error { return fmt.Errorf("sqlitelimit: %w", srl.ErrClosed) }

// row is one key's stored state.
type row struct {
	st       keystate.State
	expireAt int64 // 0: absent
}

// loadRow reads key's state as of now. An expired row reads as absent, as
// an expired Redis key would be gone; a row that does not decode reads as
// empty, and every value is bounded before use (ClampRanges), so garbage
// can neither fail nor poison a decision.
func (s *Store) loadRow(key string, now int64) (row, error) {
	var data []byte
	var r row
	err := s.load.QueryRowContext(context.Background(), key).Scan(&data, &r.expireAt)
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, nil
	}
	if err != nil {
		return row{}, err
	}
	if r.expireAt <= now {
		return row{}, nil
	}
	if json.Unmarshal(data, &r.st) != nil {
		r.st = keystate.State{}
	}
	r.st.ClampRanges()
	return r, nil
}

// saveRow writes key's state with its expiry: encoding/json of every
// exported field of keystate.State, so a field added there is stored
// without a change here.
func (s *Store) saveRow(key string, r row) error {
	data, err := json.Marshal(&r.st)
	if err != nil {
		return err
	}
	_, err = s.save.ExecContext(context.Background(), key, string(data), r.expireAt)
	return err
}

func (s *Store) ready(ctx context.Context) error {
	if s.cfg.err != nil {
		return s.cfg.err
	}
	return ctx.Err()
}

// Acquire decides one request in one write transaction; it implements
// smartratelimit.Backend.
func (s *Store) Acquire(ctx context.Context, r srl.Request) (srl.Decision, error) {
	if err := s.ready(ctx); err != nil {
		return srl.Decision{}, err
	}
	var buf [8]keystate.Limit
	all, nFixed, err := keystate.Prepare(buf[:], r)
	if err != nil {
		return srl.Decision{}, err
	}
	var costs [srl.MaxQuotas]keystate.Cost
	it := keystate.Item{
		N: int64(r.N), MaxWait: r.MaxWait.Microseconds(), All: all, NFixed: nFixed,
		Costs: keystate.CompileCosts(costs[:], r.Costs), Probe: r.Probe.Microseconds(),
	}
	var res keystate.Result
	err = s.write(ctx, func() error {
		now := s.cfg.nowMicros()
		cur, err := s.loadRow(r.Key, now)
		if err != nil {
			return err
		}
		res = keystate.Result{}
		if h := cur.st.Acquire(now, &it, &res); h > 0 {
			cur.expireAt = max(cur.expireAt, h+keystate.Grace)
			return s.saveRow(r.Key, cur)
		}
		return nil
	})
	if err != nil {
		return srl.Decision{}, s.wrap(err)
	}
	return res.Decision(&it), nil
}

// Observe merges what a response said about the server's budget, in one
// write transaction; see smartratelimit.Observation for the rules.
func (s *Store) Observe(ctx context.Context, key string, o srl.Observation) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", srl.ErrInvalidRequest)
	}
	o, err := o.Normalize()
	if err != nil || o.IsZero() {
		return err
	}
	obs, params := keystate.ObsFrom(o), keystate.Params(s.cfg.backoffBase, s.cfg.backoffMax)
	return s.wrap(s.write(ctx, func() error {
		now := s.cfg.nowMicros()
		cur, err := s.loadRow(key, now)
		if err != nil {
			return err
		}
		if _, changed := cur.st.Observe(now, obs, params); changed {
			cur.expireAt = max(cur.expireAt, cur.st.Horizon()+keystate.Grace)
			return s.saveRow(key, cur)
		}
		return nil
	}))
}

// Peek returns the key's budget without changing it; it implements
// smartratelimit.Backend. It takes no lock: in WAL mode a read sees the
// last committed state while writers go on.
func (s *Store) Peek(ctx context.Context, r srl.Request) (srl.Status, error) {
	if err := s.ready(ctx); err != nil {
		return srl.Status{}, err
	}
	if err := r.ValidateStatus(); err != nil {
		return srl.Status{}, err
	}
	var buf [8]keystate.Limit
	all, nFixed := keystate.CompileRequest(buf[:], r.Limits, r.DefaultLimits)
	var st srl.Status
	err := s.read(ctx, func() error {
		now := s.cfg.nowMicros()
		cur, err := s.loadRow(r.Key, now)
		if err != nil {
			return err
		}
		st = cur.st.Status(now, r.Key, all, nFixed)
		return nil
	})
	return st, s.wrap(err)
}

// Reset forgets everything stored for key, for every process.
func (s *Store) Reset(ctx context.Context, key string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", srl.ErrInvalidRequest)
	}
	return s.wrap(s.write(ctx, func() error {
		_, err := s.delete.ExecContext(context.Background(), key)
		return err
	}))
}

// wrap names the store in an error from SQLite.
func (s *Store) wrap(err error) error {
	if err == nil || errors.Is(err, ErrBusy) || errors.Is(err, srl.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("sqlitelimit: %s: %w", s.path, err)
}

// Allow is shorthand for AllowN(ctx, key, 1, limits...).
func (s *Store) Allow(ctx context.Context, key string, limits ...srl.Limit) (srl.Decision, error) {
	return s.Acquire(ctx, srl.Request{Key: key, N: 1, Limits: limits})
}

// AllowN decides whether n units may be spent from key's budget now. It
// never waits.
func (s *Store) AllowN(ctx context.Context, key string, n int, limits ...srl.Limit) (srl.Decision, error) {
	return s.Acquire(ctx, srl.Request{Key: key, N: n, Limits: limits})
}

// Wait blocks until one unit of key's budget is admitted, with the same
// rules as redislimit's Wait: reservations slept exactly, quota and block
// waits jittered, a wait past ctx's deadline refused at once.
func (s *Store) Wait(ctx context.Context, key string, limits ...srl.Limit) error {
	_, err := s.WaitRequest(ctx, srl.Request{Key: key, N: 1, Limits: limits})
	return err
}

// WaitRequest is Wait for a full request; r.MaxWait, when positive, bounds
// the total wait.
func (s *Store) WaitRequest(ctx context.Context, r srl.Request) (srl.Decision, error) {
	if err := r.Validate(); err != nil {
		return srl.Decision{}, err
	}
	return wait.For(ctx, s, r, wait.Sleep, time.Now)
}

// Status returns key's budget without changing it.
func (s *Store) Status(ctx context.Context, key string, limits ...srl.Limit) (srl.Status, error) {
	return s.Peek(ctx, srl.Request{Key: key, Limits: limits})
}

// Keys returns the keys with live state, sorted.
func (s *Store) Keys(ctx context.Context) ([]string, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var keys []string
	err := s.read(ctx, func() error {
		keys = keys[:0]
		rows, err := s.conn.QueryContext(context.Background(),
			"SELECT key FROM srl_keys WHERE expire_at > ? ORDER BY key", s.cfg.nowMicros())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return rows.Err()
	})
	return keys, s.wrap(err)
}

// Limits returns the configured limits key has pacing state for, sorted
// by their String form, and whether key has live state at all: what an
// operator passes to Status to see every limit.
func (s *Store) Limits(ctx context.Context, key string) ([]srl.Limit, bool, error) {
	if err := s.ready(ctx); err != nil {
		return nil, false, err
	}
	var cur row
	err := s.read(ctx, func() error {
		var err error
		cur, err = s.loadRow(key, s.cfg.nowMicros())
		return err
	})
	if err != nil {
		return nil, false, s.wrap(err)
	}
	var limits []srl.Limit
	for _, t := range cur.st.TATs {
		if l := t.Limit.Public(); l.Validate() == nil {
			limits = append(limits, l)
		}
	}
	sort.Slice(limits, func(i, j int) bool { return limits[i].String() < limits[j].String() })
	return limits, cur.expireAt > 0, nil
}

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Close stops the sweep and closes the database. Calls after Close fail
// with an error wrapping smartratelimit.ErrClosed. The file stays: the
// next Open reads the budgets back.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.stopSweep != nil {
		s.stopSweep()
	}
	s.swept.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeAll()
}

func (s *Store) closeAll() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.load, s.save, s.delete} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// ttl reports how long key's state will live, for the conformance suite.
func (s *Store) ttl(key string) (time.Duration, bool) {
	var cur row
	var now int64
	err := s.read(context.Background(), func() error {
		var err error
		now = s.cfg.nowMicros()
		cur, err = s.loadRow(key, now)
		return err
	})
	if err != nil || cur.expireAt <= now {
		return 0, false
	}
	return time.Duration(cur.expireAt-now) * time.Microsecond, true
}
