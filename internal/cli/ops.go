package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/redact"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// opsFlags are the flags every operator command shares.
type opsFlags struct {
	*command
	redisURL *string
	prefix   *string
	tlsCA    *string
}

func newOpsFlags(name, synopsis, about string) *opsFlags {
	c := newCommand(name, synopsis, about)
	o := &opsFlags{
		command: c,
		// The default is documented, never computed: a default taken from
		// REDIS_URL would print its password in every usage message.
		redisURL: c.fs.String("redis", "", "store `URL` (default $REDIS_URL): redis://host:port/db, sqlite:///path.db, …; see \"smartratelimit help\" for the forms"),
		prefix:   c.fs.String("prefix", redislimit.DefaultKeyPrefix, "the key `prefix` the limiters use (Redis only)"),
		tlsCA:    c.fs.String("tls-ca", "", "PEM `file` of the CA a rediss:// server's certificate is checked against (default: the system's); only with rediss://"),
	}
	// --store is --redis by a name that fits every store: one variable,
	// so the last one given wins, as with any repeated flag.
	c.fs.StringVar(o.redisURL, "store", "", "the same as --redis (a store `URL` of any form)")
	return o
}

// url is the Redis URL to use: --redis, else $REDIS_URL, read only now.
func (o *opsFlags) url() string {
	if *o.redisURL != "" {
		return *o.redisURL
	}
	return os.Getenv("REDIS_URL")
}

// keyForms says what a KEY argument may be.
const keyForms = `A KEY is a key as your code names it, or as "smartratelimit keys" prints it:
a hashed key as #<32 hex digits> (quote it: in a shell, # starts a comment),
an escaped one with Go escapes such as \u202e (in single quotes). A KEY
starting with - must follow --.`

// limitsOf reads the configured limits a Redis key has state for from its TAT
// fields ("g:<rate>:<period µs>[:<burst>]").
func limitsOf(ctx context.Context, rdb redis.UniversalClient, redisKey string) ([]srl.Limit, bool, error) {
	fields, err := rdb.HKeys(ctx, redisKey).Result()
	if err != nil {
		return nil, false, err
	}
	var limits []srl.Limit
	for _, f := range fields {
		parts := strings.Split(f, ":")
		if parts[0] != "g" || len(parts) < 3 || len(parts) > 4 {
			continue
		}
		rate, err1 := strconv.Atoi(parts[1])
		period, err2 := strconv.ParseInt(parts[2], 10, 64)
		burst := 1
		var err3 error
		if len(parts) == 4 {
			burst, err3 = strconv.Atoi(parts[3])
		}
		l := srl.Limit{Rate: rate, Period: time.Duration(period) * time.Microsecond, Burst: burst}
		if err1 == nil && err2 == nil && err3 == nil && l.Validate() == nil {
			limits = append(limits, l)
		}
	}
	sort.Slice(limits, func(i, j int) bool { return limits[i].String() < limits[j].String() })
	return limits, len(fields) > 0, nil
}

// statusJSON is the --json form of one key's status.
type statusJSON struct {
	Key            string `json:"key"`
	RedisKey       string `json:"redis_key,omitempty"` // Redis only
	where          string
	Found          bool        `json:"found"`
	Quota          *quotaJSON  `json:"quota,omitempty"`
	Quotas         []quotaJSON `json:"quotas,omitempty"`
	BlockedSeconds float64     `json:"blocked_seconds"`
	Limits         []limitJSON `json:"limits"`
	Utilization    float64     `json:"utilization"`
}

type quotaJSON struct {
	Unit         string  `json:"unit"`
	Limit        int     `json:"limit"`
	Remaining    int     `json:"remaining"`
	ResetSeconds float64 `json:"reset_seconds"`
}

type limitJSON struct {
	Limit        string  `json:"limit"`
	Remaining    int     `json:"remaining"`
	ResetSeconds float64 `json:"reset_seconds"`
}

// statusCmd prints what every process sees for each key.
type statusCmd struct {
	*opsFlags
	asJSON, watch *bool
	interval      *time.Duration
}

func newStatus() *statusCmd {
	o := newOpsFlags("status", "status [flags] KEY...",
		"Prints the state every process sees for each key: the server quota in every unit it advertised (requests, tokens, ...), any block, each configured limit.\n"+keyForms)
	return &statusCmd{
		opsFlags: o,
		asJSON:   o.fs.Bool("json", false, "print JSON"),
		watch:    o.fs.Bool("watch", false, "refresh until interrupted"),
		interval: o.fs.Duration("interval", time.Second, "refresh `interval` with --watch"),
	}
}

func status(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newStatus()
	keys, code, done := o.parse(args, stdout, stderr)
	if done {
		return code
	}
	if len(keys) == 0 {
		// The likeliest cause after "keys": an unquoted #<hash>, which the
		// shell took for a comment.
		return o.badUsage(stderr, "no KEY given (quote a KEY that starts with #: in a shell, # starts a comment)")
	}
	if *o.interval <= 0 {
		return o.badUsage(stderr, "--interval must be positive")
	}
	asJSON, watch, interval := o.asJSON, o.watch, o.interval
	sess, code := o.open(ctx, stderr)
	if code != 0 {
		return code
	}
	defer sess.close()

	for {
		code = printStatus(ctx, sess, keys, *asJSON, stdout, stderr)
		if code == interrupted {
			if *watch {
				return 0 // Ctrl-C is how a watch ends, even mid-refresh
			}
			fmt.Fprintln(stderr, "smartratelimit: status: interrupted")
			return 1
		}
		if !*watch || code != 0 {
			return code
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(*interval):
		}
		if !*asJSON {
			fmt.Fprintf(stdout, "\n--- %s\n", time.Now().Format(time.TimeOnly))
		}
	}
}

// interrupted is printStatus's answer when the context ended mid-query.
const interrupted = -1

// printStatus prints the status of each KEY argument and returns the exit
// code, or interrupted.
func printStatus(ctx context.Context, sess store, args []string, asJSON bool, stdout, stderr io.Writer) int {
	fail := func(name string, err error) int {
		if ctx.Err() != nil {
			return interrupted
		}
		fmt.Fprintf(stderr, "smartratelimit: status %s: %v\n", quotedKey(name), redact.Error(err))
		return 1
	}
	var out []statusJSON
	code := 0
	for _, arg := range args {
		t, err := sess.locate(ctx, arg)
		if err != nil {
			return fail(arg, err)
		}
		redisKey := ""
		if _, ok := sess.(*redisStore); ok {
			redisKey = shownKey(t.stored)
		}
		if !t.found {
			fmt.Fprintf(stderr, "smartratelimit: %s\n", sess.missing(t))
			code = 1
			out = append(out, statusJSON{Key: shownKey(t.name), RedisKey: redisKey, Limits: []limitJSON{}})
			continue
		}
		limits, err := sess.limits(ctx, t)
		if err == nil {
			var st srl.Status
			st, err = sess.status(ctx, t.key, limits)
			j := toJSON(shownKey(t.name), redisKey, st)
			j.where = sess.where(t)
			out = append(out, j)
		}
		if err != nil {
			return fail(t.name, err)
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(out); err != nil {
			return 1
		}
		return code
	}
	for _, s := range out {
		if !s.Found {
			continue
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\t(%s)\n", s.Key, s.where)
		for _, q := range s.Quotas {
			name := "server quota"
			if q.Unit != srl.UnitRequests {
				name += " (" + q.Unit + ")"
			}
			fmt.Fprintf(tw, "  %s\t%d of %d left, resets in %v\n", name, q.Remaining, q.Limit, seconds(q.ResetSeconds))
		}
		if len(s.Quotas) == 0 {
			fmt.Fprintf(tw, "  server quota\tnot advertised yet\n")
		}
		if s.BlockedSeconds > 0 {
			fmt.Fprintf(tw, "  blocked\tfor %v (Retry-After)\n", seconds(s.BlockedSeconds))
		} else {
			fmt.Fprintf(tw, "  blocked\tno\n")
		}
		for _, lim := range s.Limits {
			fmt.Fprintf(tw, "  limit %s\t%d left, full in %v\n", lim.Limit, lim.Remaining, seconds(lim.ResetSeconds))
		}
		fmt.Fprintf(tw, "  utilization\t%.0f%%\n", 100*s.Utilization)
		_ = tw.Flush()
	}
	return code
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}

// toJSON is the --json form of st; key and redisKey as the command prints
// them.
func toJSON(key, redisKey string, st srl.Status) statusJSON {
	s := statusJSON{Key: key, RedisKey: redisKey, Found: true, BlockedSeconds: st.BlockedFor.Seconds(),
		Utilization: st.Utilization(), Limits: []limitJSON{}}
	for _, q := range st.Quotas {
		unit := q.Unit
		if unit == "" {
			unit = srl.UnitRequests
		}
		s.Quotas = append(s.Quotas, quotaJSON{Unit: unit, Limit: q.Limit, Remaining: q.Remaining, ResetSeconds: q.ResetAfter.Seconds()})
	}
	if st.Quota.Known {
		unit := st.Quota.Unit
		if unit == "" {
			unit = srl.UnitRequests
		}
		s.Quota = &quotaJSON{Unit: unit, Limit: st.Quota.Limit, Remaining: st.Quota.Remaining, ResetSeconds: st.Quota.ResetAfter.Seconds()}
	}
	for _, ls := range st.Limits {
		s.Limits = append(s.Limits, limitJSON{Limit: ls.Limit.String(), Remaining: ls.Remaining, ResetSeconds: ls.ResetAfter.Seconds()})
	}
	return s
}

// keysCmd lists the keys under the prefix.
type keysCmd struct {
	*opsFlags
	asJSON *bool
}

func newKeys() *keysCmd {
	o := newOpsFlags("keys", "keys [flags]",
		"Lists the keys in the store (in Redis, those under the prefix, with SCAN, never KEYS), one a line, each in a form status and reset accept.")
	return &keysCmd{opsFlags: o, asJSON: o.fs.Bool("json", false, "print JSON")}
}

func keys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newKeys()
	rest, code, done := o.parse(args, stdout, stderr)
	if done {
		return code
	}
	if len(rest) > 0 {
		return o.badUsage(stderr, fmt.Sprintf("unexpected argument %q", rest[0]))
	}
	asJSON := o.asJSON
	sess, code := o.open(ctx, stderr)
	if code != 0 {
		return code
	}
	defer sess.close()
	found, err := sess.keys(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "smartratelimit: keys:", redact.Error(err))
		return 1
	}
	// Printed escaped where needed (shownKey), in the form status and
	// reset read back: a hostile key must not reach the terminal raw.
	shown := make([]string, len(found))
	for i, k := range found {
		shown[i] = shownKey(k)
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(shown); err != nil {
			return 1
		}
		return 0
	}
	for _, k := range shown {
		fmt.Fprintln(stdout, k)
	}
	fmt.Fprintf(stderr, "%d keys %s\n", len(found), sess.scope())
	return 0
}

// scanKeys lists the limiter keys under prefix on every master.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	var mu sync.Mutex
	seen := map[string]bool{}
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, escapeGlob(prefix)+"{*}", 1000).Iterator()
		for it.Next(ctx) {
			// MATCH guarantees <prefix>{...}; the stored name is between.
			if k := it.Val(); len(k) >= len(prefix)+2 {
				mu.Lock()
				seen[k[len(prefix)+1:len(k)-1]] = true
				mu.Unlock()
			}
		}
		return it.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, rdb)
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, err
}

// escapeGlob quotes the glob characters of a literal for SCAN MATCH.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// resetCmd forgets a key's state.
type resetCmd struct {
	*opsFlags
	yes *bool
}

func newReset() *resetCmd {
	o := newOpsFlags("reset", "reset [flags] KEY",
		"Forgets a key's pacing, learned quota and block, for every process.\n"+keyForms)
	return &resetCmd{opsFlags: o, yes: o.fs.Bool("yes", false, "do not ask for confirmation")}
}

func reset(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := newReset()
	rest, code, done := o.parse(args, stdout, stderr)
	if done {
		return code
	}
	if len(rest) != 1 {
		return o.badUsage(stderr, fmt.Sprintf("want one KEY, got %d (quote a KEY that starts with #: in a shell, # starts a comment)", len(rest)))
	}
	key, yes := rest[0], o.yes
	sess, code := o.open(ctx, stderr)
	if code != 0 {
		return code
	}
	defer sess.close()
	t, err := sess.locate(ctx, key)
	if err != nil {
		fmt.Fprintln(stderr, "smartratelimit: reset:", redact.Error(err))
		return 1
	}
	if !t.found {
		fmt.Fprintf(stderr, "smartratelimit: %s: nothing to reset\n", sess.missing(t))
		return 1
	}
	if !*yes {
		fmt.Fprintf(stdout, "Reset %s (%s)? Every process forgets its pacing, learned quota and block (within a second). [y/N] ", quotedKey(t.name), sess.where(t))
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(stderr, "smartratelimit: reset aborted")
			return 1
		}
	}
	if err := sess.reset(ctx, t.key); err != nil {
		fmt.Fprintln(stderr, "smartratelimit: reset:", redact.Error(err))
		return 1
	}
	fmt.Fprintf(stdout, "reset %s\n", quotedKey(t.name))
	return 0
}
