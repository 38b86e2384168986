package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/smartratelimit/smartratelimit/internal/redact"
)

// redisURLHelp documents the forms connect accepts.
const redisURLHelp = `Redis URL forms (--redis, or REDIS_URL):
  redis://[user:password@]host:port[/db]                      one server
  rediss://...                                                 the same over TLS
  redis://host:port?addr=host2:port&addr=host3:port            a Redis Cluster (every address a seed)
  redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]
                                                               a Sentinel-managed primary (rediss+sentinel: TLS)`

// errBadURL marks a URL the command cannot use (exit code 2). Its
// messages leave out redisURLHelp, which the caller prints after them:
// the help's URL templates are not for redaction.
var errBadURL = errors.New("bad Redis URL")

// connect builds a client for rawURL and checks that Redis answers.
// caFile, when set, is the PEM of the CAs a TLS server is checked against
// instead of the system's.
func connect(ctx context.Context, rawURL, caFile string) (redis.UniversalClient, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%w: none given; pass --redis or set REDIS_URL", errBadURL)
	}
	var roots *x509.CertPool
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --tls-ca: %v", errBadURL, err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: --tls-ca %s holds no PEM certificate", errBadURL, caFile)
		}
	}
	rdb, err := clientFor(rawURL, roots)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", errBadURL, redact.URL(rawURL), redact.Error(urlReason(err)))
	}
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s: %w", redact.URL(rawURL), redact.Error(err))
	}
	return rdb, nil
}

// urlReason drops the URL a *url.Error quotes, which the message that
// wraps it names already (redacted), and keeps its reason.
func urlReason(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func clientFor(rawURL string, roots *x509.CertPool) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	// trust applies --tls-ca. A nil config means plain text, where the CA
	// would silently do nothing and the password would travel in the
	// clear: refuse that instead.
	trust := func(c *tls.Config) error {
		switch {
		case roots == nil:
		case c == nil:
			return fmt.Errorf("--tls-ca needs TLS, but %s:// is plain text: use rediss:// (or rediss+sentinel://)", u.Scheme)
		default:
			c.RootCAs = roots
		}
		return nil
	}
	switch u.Scheme {
	case "redis", "rediss":
		if len(u.Query()["addr"]) > 0 {
			opts, err := redis.ParseClusterURL(rawURL)
			if err != nil {
				return nil, err
			}
			if err := trust(opts.TLSConfig); err != nil {
				return nil, err
			}
			return redis.NewClusterClient(opts), nil
		}
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, err
		}
		if err := trust(opts.TLSConfig); err != nil {
			return nil, err
		}
		return redis.NewClient(opts), nil
	case "redis+sentinel", "rediss+sentinel":
		opts, err := sentinelOptions(u)
		if err != nil {
			return nil, err
		}
		if err := trust(opts.TLSConfig); err != nil {
			return nil, err
		}
		return redis.NewFailoverClient(opts), nil
	}
	return nil, fmt.Errorf("unknown scheme %q", u.Scheme)
}

func sentinelOptions(u *url.URL) (*redis.FailoverOptions, error) {
	if u.Host == "" {
		return nil, errors.New("no sentinel address")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if parts[0] == "" {
		return nil, errors.New("no master name in the path")
	}
	opts := &redis.FailoverOptions{MasterName: parts[0], SentinelAddrs: strings.Split(u.Host, ",")}
	if len(parts) > 1 {
		db, err := strconv.Atoi(parts[1])
		if err != nil || db < 0 {
			return nil, fmt.Errorf("bad database %q", parts[1])
		}
		opts.DB = db
	}
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	if u.Scheme == "rediss+sentinel" {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return opts, nil
}
