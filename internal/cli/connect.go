package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/smartratelimit/smartratelimit/internal/redact"
	"github.com/smartratelimit/smartratelimit/storage"
)

// urlHelp documents the forms the operator commands accept; package
// storage is their one parser.
const urlHelp = `The store's URL comes from --redis (or its alias --store), else REDIS_URL.
` + storage.Forms

// errBadURL marks a URL the command cannot use (exit code 2). Its
// messages leave out urlHelp, which the caller prints after them: the
// help's URL templates are not for redaction.
var errBadURL = errors.New("bad store URL")

// connect builds a client for a Redis URL and checks that Redis answers.
// caFile, when set, is the PEM of the CAs a TLS server is checked against
// instead of the system's.
func connect(ctx context.Context, rawURL, caFile string) (redis.UniversalClient, error) {
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
	rdb, err := storage.RedisClient(rawURL, storage.WithRootCAs(roots))
	if errors.Is(err, storage.ErrTLSRequired) {
		u, _ := url.Parse(rawURL)
		return nil, fmt.Errorf("%w %q: --tls-ca needs TLS, but %s:// is plain text: use rediss:// (or rediss+sentinel://)",
			errBadURL, redact.URL(rawURL), u.Scheme)
	}
	if err != nil {
		// storage's errors name the URL masked already.
		return nil, fmt.Errorf("%w: %v", errBadURL, err)
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
