package redislimit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
)

var (
	// ErrUnavailable reports that Redis could not be reached within the
	// decision budget (refused, reset, timed out, pool exhausted, loading,
	// read-only, failing over) or cannot write (OOM, MISCONF). Under the
	// FailClosed policy it is returned to the caller; under the others the
	// limiter degrades instead.
	ErrUnavailable = errors.New("redislimit: redis unavailable")
	// ErrMisconfigured reports a Redis that answers but refuses the
	// limiter: authentication, ACL permissions, scripts or TIME inside
	// scripts not allowed. It is always returned, never hidden behind a
	// fallback, because no amount of waiting fixes it.
	ErrMisconfigured = errors.New("redislimit: redis refuses the limiter")
)

// errorKind is how the limiter reacts to a failed call.
type errorKind int

const (
	kindCaller errorKind = iota // the caller's context ended: return its error
	kindInfra                   // Redis unreachable or not serving: degrade
	kindConfig                  // Redis refuses us: surface
	kindData                    // the key's data is not ours: surface
)

// infraPrefixes mark replies of a Redis that is up but cannot serve the
// limiter for now: loading, read-only, failing over, busy, full (OOM under
// maxmemory with noeviction) or unable to persist (MISCONF, a failing RDB
// save). Waiting fixes each of them, so they are outages of the shared
// store, decided by the failure policy, not mistakes of the caller.
var infraPrefixes = []string{
	"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS",
	"BUSY", "ERR max number of clients", "MASTER_DOWN", "OOM command not allowed", "MISCONF",
}

var configMarks = []string{
	"NOAUTH", "WRONGPASS", "NOPERM", "not allowed from script", "not allowed from scripts",
	"unknown command", "CROSSSLOT", "ERR Error compiling script",
}

// String names the kind as EventBackendError reports it.
func (k errorKind) String() string {
	switch k {
	case kindInfra:
		return "unavailable"
	case kindConfig:
		return "misconfigured"
	case kindData:
		return "data"
	}
	return "caller"
}

// callerDone marks a call that failed because the caller's own context
// ended: its error is returned as is and never counts as an outage.
type callerDone struct{ err error }

func (e callerDone) Error() string { return e.err.Error() }
func (e callerDone) Unwrap() error { return e.err }

// classify sorts a failed call from within.
func classify(err error) errorKind {
	if errors.As(err, new(callerDone)) {
		return kindCaller
	}
	if errors.Is(err, srl.ErrBadReply) {
		return kindData
	}
	msg := err.Error()
	if strings.Contains(msg, "WRONGTYPE") {
		return kindData
	}
	for _, p := range infraPrefixes {
		if redis.HasErrorPrefix(err, p) || strings.Contains(msg, p) {
			return kindInfra
		}
	}
	for _, m := range configMarks {
		if strings.Contains(msg, m) {
			return kindConfig
		}
	}
	// A certificate Redis's TLS endpoint presents that we do not trust will
	// not become trusted by waiting.
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) {
		return kindConfig
	}
	var netErr net.Error
	switch {
	case errors.Is(err, errDecisionTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted), errors.Is(err, redis.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &netErr):
		return kindInfra
	}
	var redisErr redis.Error
	if errors.As(err, &redisErr) {
		// An error reply we do not know, e.g. a script runtime error: the
		// server answered, so waiting for it will not help.
		return kindConfig
	}
	return kindInfra
}

// errDecisionTimeout is the cause when the limiter's own budget ran out.
var errDecisionTimeout = fmt.Errorf("%w: decision budget exceeded", context.DeadlineExceeded)

// wrapFailure turns a failed call into the error a caller sees.
func wrapFailure(kind errorKind, key, redisKey string, err error) error {
	switch kind {
	case kindCaller:
		var cd callerDone
		errors.As(err, &cd)
		return cd.err
	case kindData:
		if errors.Is(err, srl.ErrBadReply) {
			return &srl.KeyError{Key: key, Err: fmt.Errorf("redislimit: redis key %q: %w", redisKey, err)}
		}
		return &srl.KeyError{Key: key, Err: fmt.Errorf("redislimit: redis key %q: %w: %v", redisKey, srl.ErrWrongType, err)}
	case kindConfig:
		hint := ""
		if strings.Contains(err.Error(), "not allowed from script") {
			hint = " (this server refuses TIME inside scripts: use WithClientTime)"
		}
		return fmt.Errorf("%w%s: %w", ErrMisconfigured, hint, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
