package sqlitelimit

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/storage"
)

// Importing the package registers the "sqlite" scheme with package
// storage: storage.Open("sqlite:///rate_limits.db") and
// httpclient.WithStorage then open a Store.
func init() { storage.Register("sqlite", openURL) }

// openURL opens the file a sqlite:// URL names. Its query may set the
// options a URL can carry:
//
//	busy_timeout=10s     WithBusyTimeout
//	sweep_interval=5m    WithSweepInterval (0 disables the sweep)
//	sync=full            WithFullSync (sync=normal is the default)
func openURL(t *storage.Target) (srl.Backend, io.Closer, error) {
	var opts []Option
	names := make([]string, 0, len(t.Query))
	for name := range t.Query {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vals := t.Query[name]
		if len(vals) != 1 {
			return nil, nil, fmt.Errorf("sqlite URL: %s given %d times", name, len(vals))
		}
		v := vals[0]
		switch name {
		case "busy_timeout", "sweep_interval":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, nil, fmt.Errorf("sqlite URL: %s=%q: want a duration such as 10s", name, v)
			}
			if name == "busy_timeout" {
				opts = append(opts, WithBusyTimeout(d))
			} else {
				opts = append(opts, WithSweepInterval(d))
			}
		case "sync":
			switch strings.ToLower(v) {
			case "full":
				opts = append(opts, WithFullSync())
			case "normal":
			default:
				return nil, nil, fmt.Errorf("sqlite URL: sync=%q: want full or normal", v)
			}
		default:
			return nil, nil, fmt.Errorf("sqlite URL: unknown parameter %q; known: busy_timeout, sweep_interval, sync", name)
		}
	}
	s, err := Open(t.Path, opts...)
	if err != nil {
		return nil, nil, err
	}
	return s, s, nil
}
