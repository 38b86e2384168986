package redislimit

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...interface{}) {}

// TestMain silences go-redis's own log of failed dials, which the outage
// tests provoke on purpose by the hundred.
func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}
