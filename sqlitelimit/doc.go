// Package sqlitelimit keeps the budgets of smartratelimit in one SQLite
// file, for the processes of one machine: a cron job, a few workers, a CLI
// run again and again, sharing a third-party API's budget without a Redis
// server. It is pure Go (modernc.org/sqlite, no cgo) and lives in a
// module of its own, so that the SQLite driver never enters the build of
// a program that does not import it.
//
//	store, err := sqlitelimit.Open("rate_limits.db")
//	...
//	defer store.Close()
//	client := httpclient.New(httpclient.WithBackend(store))
//
// or by URL, through package storage and httpclient.WithStorage, once
// this package is imported for its side effect:
//
//	import _ "github.com/smartratelimit/smartratelimit/sqlitelimit"
//
//	client := httpclient.New(httpclient.WithStorage("sqlite:///rate_limits.db"))
//
// # One state machine, one transaction per decision
//
// A Store runs the same state machine as the Redis scripts and the
// in-memory twin (package fallback): GCRA limits spent all or nothing,
// the server's quota learned from responses, blocks from Retry-After and
// from refusals, the probe lease. The conformance suite in package
// backendtest holds it to their replies.
//
// Each decision (Acquire, Observe, Reset) is one transaction that takes
// the database's write lock before it reads (BEGIN IMMEDIATE), loads the
// key's row, runs the state machine, writes the row back with its expiry
// when the state changed, and commits. Two processes can never decide
// from the same state, and a decision is written whole or not at all: a
// process killed mid-transaction (SIGKILL included) leaves nothing of it,
// and the others go on once the operating system has released its lock.
// While another process holds the lock, a decision retries with waits of
// microseconds, within its context and at most the busy timeout
// (WithBusyTimeout, default 5s), then fails with ErrBusy. Within one
// process the store's goroutines take turns on one connection and never
// contend through the file's locks. Status and the other reads take no
// lock: in WAL mode a read sees the last committed state while writers go
// on.
//
// The file is in WAL mode with synchronous=NORMAL: a committed decision
// survives the death of its process; WithFullSync makes it survive a
// power loss too. A learned quota, a block and the pacing of every limit
// are in the file, so they survive a restart: a process that opens the
// file again, or a new one, starts from what the last one knew.
//
// # Bounded
//
// A key's row expires one second past its horizon (keystate.Grace), as
// its Redis TTL would: the last instant its state matters, at most a day
// ahead for a daily quota, a limit's period ahead for pacing. An expired
// row behaves as absent at once and is deleted by the sweep, at Open and
// then every sweep interval (WithSweepInterval, default one minute), in
// batches that hold the lock briefly; freed pages go back to the file
// system (auto_vacuum=INCREMENTAL), and the WAL file is cut back to 4 MiB
// after checkpoints. So the file holds at most the keys used within their
// horizon plus the sweep interval, a few hundred bytes each.
//
// # Schema
//
// One table, srl_keys (key, state, expire_at), state the JSON of the
// key's keystate.State (every exported field, so a new one is carried
// without a change here). PRAGMA application_id marks the file as a
// store, PRAGMA user_version is the schema version: Open migrates an
// older file forward in one transaction and refuses a file of a newer
// version (ErrSchemaTooNew), of another application or no database at
// all (ErrNotStore), with an error that says which, never a panic.
//
// The file must be on a local file system: SQLite's locks are not
// reliable over NFS, and a WAL database cannot be shared across machines
// at all. For a fleet of machines use Redis (package redislimit).
package sqlitelimit
