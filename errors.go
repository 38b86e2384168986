package smartratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrRateLimited is the errors.Is target for every "limited" error: a
// denied decision turned into an error, a Wait that cannot be met before
// its deadline, an HTTP request rejected by the client.
var ErrRateLimited = errors.New("smartratelimit: rate limited")

// Argument and data errors. Each is returned wrapped with the detail; test
// for them with errors.Is.
var (
	// ErrInvalidLimit reports a Limit with a non-positive Rate or Period, a
	// negative Burst (or, for a window limit, one above 1), an unknown
	// Kind, or a span the limiter cannot represent.
	ErrInvalidLimit = errors.New("smartratelimit: invalid limit")
	// ErrInvalidRequest reports an empty key, a cost below 1 or above a
	// pacing limit's burst or a window limit's rate, or a negative maximum
	// wait.
	ErrInvalidRequest = errors.New("smartratelimit: invalid request")
	// ErrInvalidObservation reports an Observation that was rejected: a
	// negative value, a count above MaxCount, or a time beyond MaxHorizon.
	ErrInvalidObservation = errors.New("smartratelimit: invalid observation")
	// ErrWrongType reports that the storage for a key holds data the limiter
	// did not write (in Redis, a key of another type at the limiter's name).
	ErrWrongType = errors.New("smartratelimit: key holds the wrong type")
	// ErrBadReply reports a backend answer that could not be decoded.
	ErrBadReply = errors.New("smartratelimit: malformed backend reply")
	// ErrClosed reports a call on a closed limiter.
	ErrClosed = errors.New("smartratelimit: limiter closed")
)

// LimitError is the error returned when a request is not admitted. It
// carries how long to wait before trying again. It matches ErrRateLimited
// with errors.Is; open it with errors.As:
//
//	var le *smartratelimit.LimitError
//	if errors.As(err, &le) {
//		time.Sleep(le.RetryAfter)
//	}
type LimitError struct {
	// Key is the budget that refused the request.
	Key string
	// RetryAfter is how long until the request could be admitted, assuming
	// nobody else spends from the budget meanwhile. Never negative.
	RetryAfter time.Duration
	// Cause says which dimension refused: a configured limit, the server's
	// quota, or a block from Retry-After.
	Cause Cause
	// Deadline reports that the wait was refused because it would outlast
	// the caller's context deadline or maximum wait, not because of a
	// refusal by the backend alone.
	Deadline bool
}

func (e *LimitError) Error() string {
	msg := "smartratelimit: rate limited on " + strconv.Quote(e.Key)
	if e.Cause != CauseNone {
		msg += " by " + e.Cause.String()
	}
	if e.Deadline {
		msg += "; waiting would exceed the deadline"
	}
	return msg + fmt.Sprintf("; retry after %v", e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true for every *LimitError.
func (e *LimitError) Is(target error) bool { return target == ErrRateLimited }

// KeyError reports a failure tied to one key's stored state, such as
// ErrWrongType. Err carries the cause; errors.Is and errors.As see through
// it.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Err.Error() + " [key " + strconv.Quote(e.Key) + "]" }

// Unwrap returns the cause.
func (e *KeyError) Unwrap() error { return e.Err }
