package sqlitelimit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// The schema. The database's PRAGMA application_id marks the file as a
// store of this package, and PRAGMA user_version is its schema version:
// Open migrates an older file forward, inside one write transaction, and
// refuses a newer one, so that two builds never disagree silently about
// what a row means.
//
// Version 1 is one table, one row per key:
//
//	srl_keys(key TEXT PRIMARY KEY, state TEXT, expire_at INTEGER) WITHOUT ROWID
//	srl_keys_expire ON srl_keys(expire_at)
//
// state is the key's keystate.State as JSON of its exported fields (see
// encodeState), expire_at the microsecond (Unix time) at which the state
// is forgotten: its horizon plus keystate.Grace, as the Redis TTL would
// be. A row whose expire_at has passed behaves as absent and is deleted
// by the next sweep.
const (
	// applicationID is "SRL1".
	applicationID = 0x53524c31
	// SchemaVersion is the newest schema this build reads and writes.
	SchemaVersion = 1
)

// migrations[v] brings a database from schema version v to v+1. Each runs
// in the write transaction that also sets the new user_version, so a
// process killed midway leaves the old version whole.
var migrations = []string{
	0: `CREATE TABLE srl_keys (
		key TEXT PRIMARY KEY NOT NULL,
		state TEXT NOT NULL,
		expire_at INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE INDEX srl_keys_expire ON srl_keys(expire_at);`,
}

// ErrNotStore reports a file that is not a database this package can use:
// not an SQLite database at all, or one of another application.
var ErrNotStore = errors.New("sqlitelimit: not a rate-limit store")

// ErrSchemaTooNew reports a database written by a newer version of this
// package, whose rows this build could misread.
var ErrSchemaTooNew = errors.New("sqlitelimit: database written by a newer schema version")

// header is what Open reads before it trusts a file.
type header struct {
	appID, version int64
	foreign        []string // tables that are not ours
}

func readHeader(ctx context.Context, c *sql.Conn) (header, error) {
	var h header
	if err := c.QueryRowContext(ctx, "PRAGMA application_id").Scan(&h.appID); err != nil {
		return h, err
	}
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&h.version); err != nil {
		return h, err
	}
	rows, err := c.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		return h, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return h, err
		}
		if name != "srl_keys" {
			h.foreign = append(h.foreign, name)
		}
	}
	return h, rows.Err()
}

// readHeaderAtOnce is readHeader in a read transaction of its own, so its
// reads see one state of the file: read one by one, they could see the
// application id from before another process's migration and the schema
// version from after it, a header no store ever had.
func readHeaderAtOnce(ctx context.Context, c *sql.Conn) (header, error) {
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		return header{}, err
	}
	h, err := readHeader(ctx, c)
	if _, endErr := c.ExecContext(ctx, "ROLLBACK"); err == nil {
		err = endErr
	}
	return h, err
}

// check says whether h is a store this build can open, migrated or not.
func (h header) check(path string) error {
	switch {
	case h.appID != 0 && h.appID != applicationID:
		return fmt.Errorf("%w: %s is an SQLite database of another application (application_id %#x)", ErrNotStore, path, h.appID)
	case h.appID == 0 && (h.version != 0 || len(h.foreign) > 0):
		return fmt.Errorf("%w: %s is an SQLite database of another application (tables: %s); give the store a file of its own",
			ErrNotStore, path, strings.Join(h.foreign, ", "))
	case h.version > SchemaVersion:
		return fmt.Errorf("%w: %s has schema version %d, this build reads up to %d: upgrade github.com/smartratelimit/smartratelimit/sqlitelimit, or use another file",
			ErrSchemaTooNew, path, h.version, SchemaVersion)
	}
	return nil
}

// migrate brings the database to SchemaVersion inside the write
// transaction tx runs in. It reads the header again there: another
// process may have migrated meanwhile.
func migrate(ctx context.Context, c *sql.Conn, path string) error {
	h, err := readHeader(ctx, c)
	if err != nil {
		return err
	}
	if err := h.check(path); err != nil {
		return err
	}
	if h.version == SchemaVersion {
		return nil
	}
	for v := h.version; v < SchemaVersion; v++ {
		if _, err := c.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrating schema %d to %d: %w", v, v+1, err)
		}
	}
	// PRAGMA takes no bound parameters; both values are constants.
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, SchemaVersion)); err != nil {
		return err
	}
	return nil
}
