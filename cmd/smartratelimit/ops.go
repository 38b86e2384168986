package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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
	return &opsFlags{
		command: c,
		// The default is documented, never computed: a default taken from
		// REDIS_URL would print its password in every usage message.
		redisURL: c.fs.String("redis", "", "Redis `URL` (default $REDIS_URL); see \"smartratelimit help\" for the forms"),
		prefix:   c.fs.String("prefix", redislimit.DefaultKeyPrefix, "the key `prefix` the limiters use"),
		tlsCA:    c.fs.String("tls-ca", "", "PEM `file` of the CA a rediss:// server's certificate is checked against (default: the system's)"),
	}
}

// url is the Redis URL to use: --redis, else $REDIS_URL, read only now.
func (o *opsFlags) url() string {
	if *o.redisURL != "" {
		return *o.redisURL
	}
	return os.Getenv("REDIS_URL")
}

// open connects and builds a limiter that never falls back: an operator
// asks about Redis, not about this process's memory.
func (o *opsFlags) open(ctx context.Context, stderr io.Writer) (redis.UniversalClient, *redislimit.Limiter, int) {
	rdb, err := connect(ctx, o.url(), *o.tlsCA)
	if err != nil {
		fmt.Fprintln(stderr, "smartratelimit:", redact.Error(err))
		if errors.Is(err, errBadURL) {
			return nil, nil, 2
		}
		return nil, nil, 1
	}
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(*o.prefix), redislimit.WithFailurePolicy(redislimit.FailClosed),
		redislimit.WithDecisionTimeout(3*time.Second))
	return rdb, l, 0
}

// keyForms says what a KEY argument may be.
const keyForms = `A KEY starting with "-" must follow --.`

// limitsOf reads the configured limits a key has state for from its TAT
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
	Key            string      `json:"key"`
	RedisKey       string      `json:"redis_key"`
	Found          bool        `json:"found"`
	Quota          *quotaJSON  `json:"quota,omitempty"`
	BlockedSeconds float64     `json:"blocked_seconds"`
	Limits         []limitJSON `json:"limits"`
	Utilization    float64     `json:"utilization"`
}

type quotaJSON struct {
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
		"Prints the state every process sees for each key: the server quota, any block, each configured limit.\n"+keyForms)
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
		return o.badUsage(stderr, "no KEY given")
	}
	if *o.interval <= 0 {
		return o.badUsage(stderr, "--interval must be positive")
	}
	asJSON, watch, interval := o.asJSON, o.watch, o.interval
	rdb, l, code := o.open(ctx, stderr)
	if code != 0 {
		return code
	}
	defer rdb.Close()

	for {
		code = printStatus(ctx, rdb, l, *o.prefix, keys, *asJSON, stdout, stderr)
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

func printStatus(ctx context.Context, rdb redis.UniversalClient, l *redislimit.Limiter, prefix string, keys []string, asJSON bool, stdout, stderr io.Writer) int {
	var out []statusJSON
	code := 0
	for _, key := range keys {
		rk := redislimit.RedisKey(prefix, key)
		limits, found, err := limitsOf(ctx, rdb, rk)
		if err != nil {
			fmt.Fprintf(stderr, "smartratelimit: status %q: %v\n", key, redact.Error(err))
			return 1
		}
		if !found {
			fmt.Fprintf(stderr, "smartratelimit: no state for key %q (redis key %s): nothing was stored, it expired, or --prefix differs\n", key, rk)
			code = 1
			out = append(out, statusJSON{Key: key, RedisKey: rk, Limits: []limitJSON{}})
			continue
		}
		st, err := l.Status(ctx, key, limits...)
		if err != nil {
			fmt.Fprintf(stderr, "smartratelimit: status %q: %v\n", key, redact.Error(err))
			return 1
		}
		out = append(out, toJSON(rk, st))
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
		fmt.Fprintf(tw, "%s\t(redis key %s)\n", s.Key, s.RedisKey)
		if q := s.Quota; q != nil {
			fmt.Fprintf(tw, "  server quota\t%d of %d left, resets in %v\n", q.Remaining, q.Limit, seconds(q.ResetSeconds))
		} else {
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

func toJSON(redisKey string, st srl.Status) statusJSON {
	s := statusJSON{Key: st.Key, RedisKey: redisKey, Found: true, BlockedSeconds: st.BlockedFor.Seconds(),
		Utilization: st.Utilization(), Limits: []limitJSON{}}
	if st.Quota.Known {
		s.Quota = &quotaJSON{Limit: st.Quota.Limit, Remaining: st.Quota.Remaining, ResetSeconds: st.Quota.ResetAfter.Seconds()}
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
		"Lists the keys under the prefix (with SCAN, never KEYS), one a line, each in a form status and reset accept.")
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
	rdb, _, code := o.open(ctx, stderr)
	if code != 0 {
		return code
	}
	defer rdb.Close()
	found, err := scanKeys(ctx, rdb, *o.prefix)
	if err != nil {
		fmt.Fprintln(stderr, "smartratelimit: keys:", redact.Error(err))
		return 1
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(found); err != nil {
			return 1
		}
		return 0
	}
	for _, k := range found {
		fmt.Fprintln(stdout, k)
	}
	fmt.Fprintf(stderr, "%d keys under %q\n", len(found), *o.prefix)
	return 0
}

// scanKeys lists the limiter keys under prefix on every master.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	var mu sync.Mutex
	seen := map[string]bool{}
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, escapeGlob(prefix)+"{*}", 1000).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			if open, close := strings.Index(k, "{"), strings.LastIndex(k, "}"); open >= 0 && close > open {
				mu.Lock()
				seen[k[open+1:close]] = true
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
		return o.badUsage(stderr, fmt.Sprintf("want one KEY, got %d", len(rest)))
	}
	key, yes := rest[0], o.yes
	rdb, l, code := o.open(ctx, stderr)
	if code != 0 {
		return code
	}
	defer rdb.Close()
	rk := redislimit.RedisKey(*o.prefix, key)
	n, err := rdb.Exists(ctx, rk).Result()
	if err != nil {
		fmt.Fprintln(stderr, "smartratelimit: reset:", redact.Error(err))
		return 1
	}
	if n == 0 {
		fmt.Fprintf(stderr, "smartratelimit: no state for key %q (redis key %s): nothing to reset\n", key, rk)
		return 1
	}
	if !*yes {
		fmt.Fprintf(stdout, "Reset %q (%s)? Every process forgets its pacing, learned quota and block. [y/N] ", key, rk)
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(stderr, "smartratelimit: reset aborted")
			return 1
		}
	}
	if err := l.Reset(ctx, key); err != nil {
		fmt.Fprintln(stderr, "smartratelimit: reset:", redact.Error(err))
		return 1
	}
	fmt.Fprintf(stdout, "reset %q\n", key)
	return 0
}
