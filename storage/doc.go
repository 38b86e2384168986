// Package storage names where budgets live with one URL, as the Python
// library's storage='sqlite:///rate_limits.db' does, and opens the
// backend it names. It is the one parser of those URLs: httpclient's
// WithStorage and the smartratelimit command use it too.
//
//	memory://                                        this process's memory (package fallback)
//	redis://[user:password@]host:port[/db]           one Redis server (package redislimit)
//	rediss://...                                     the same over TLS
//	redis://host:port?addr=host2:port&addr=host3:port
//	                                                 a Redis Cluster, every address a seed
//	redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]
//	                                                 a Sentinel-managed primary (rediss+sentinel: TLS)
//	sqlite:///relative/path.db                       an SQLite file, relative to the working directory
//	sqlite:////absolute/path.db                      an SQLite file by absolute path
//
// The sqlite forms follow SQLAlchemy: three slashes, then the path, so a
// fourth slash starts an absolute one. The SQLite backend lives in a
// module of its own (package sqlitelimit), so that its driver enters only
// the builds that ask for it, and registers the scheme when imported, as
// database/sql drivers do:
//
//	import _ "github.com/smartratelimit/smartratelimit/sqlitelimit"
//
// Without that import, Open("sqlite://…") fails and names the import.
// Other modules add schemes the same way, with Register.
//
// Every error this package returns names the URL with its secrets
// (password, token-like query values) masked.
package storage
