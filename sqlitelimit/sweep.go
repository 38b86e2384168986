package sqlitelimit

import (
	"context"
	"time"
)

// sweepBatch bounds the rows one sweep transaction deletes, so that the
// write lock is never held for long: other processes' decisions wait at
// most one batch.
const sweepBatch = 500

// Sweep deletes every key whose state expired and returns the file's
// freed pages to the file system. The store runs it every sweep interval
// (WithSweepInterval) and once at Open; it is exported for a process that
// disables the timer and sweeps on its own schedule.
func (s *Store) Sweep(ctx context.Context) (deleted int, err error) {
	for {
		var n int64
		err := s.write(ctx, func() error {
			res, err := s.conn.ExecContext(context.Background(),
				"DELETE FROM srl_keys WHERE key IN (SELECT key FROM srl_keys WHERE expire_at <= ? LIMIT ?)",
				s.cfg.nowMicros(), sweepBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		deleted += int(n)
		if err != nil {
			return deleted, s.wrap(err)
		}
		if n < sweepBatch {
			break
		}
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
	}
	if deleted > 0 {
		// Outside a transaction, as SQLite requires; a busy database
		// leaves the pages for the next sweep.
		_ = s.read(ctx, func() error {
			_, err := s.conn.ExecContext(context.Background(), "PRAGMA incremental_vacuum")
			return err
		})
	}
	return deleted, nil
}

// sweepEvery sweeps at once and then every interval until ctx ends.
func (s *Store) sweepEvery(ctx context.Context, interval time.Duration) {
	defer s.swept.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// A failed sweep (a busy or closed database) is retried at the
		// next tick; expired rows read as absent meanwhile.
		_, _ = s.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
