package redislimit

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/smartratelimit/smartratelimit/backendtest"
)

// miniredisHarness runs the limiter on miniredis with its clock following
// the suite's: SetTime drives the scripts' TIME, FastForward the TTLs. TTLs
// follow elapsed time, which never runs backwards, so after a backward jump
// they resume only past the furthest time reached.
func miniredisHarness(opts ...Option) backendtest.Factory {
	return func(t *testing.T, clock *backendtest.Clock) backendtest.Harness {
		mr := miniredis.RunT(t)
		mr.SetTime(clock.Now())
		furthest := clock.Now()
		clock.OnChange(func(_, to time.Time) {
			mr.SetTime(to)
			if to.After(furthest) {
				mr.FastForward(to.Sub(furthest))
				furthest = to
			}
		})
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		l := New(rdb, append([]Option{WithDecisionTimeout(10 * time.Second)}, opts...)...)
		return backendtest.Harness{
			Backend: l,
			TTL: func(key string) (time.Duration, bool) {
				rk := RedisKey(DefaultKeyPrefix, key)
				return mr.TTL(rk), mr.Exists(rk)
			},
			LimitFields: func(key string) int {
				fields, _ := mr.HKeys(RedisKey(DefaultKeyPrefix, key)) // no key: no fields
				return backendtest.LimitFieldsOf(fields)
			},
		}
	}
}

func TestConformanceMiniredisServerTime(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, clock *backendtest.Clock) backendtest.Harness {
		return miniredisHarness(withClock(clock.Now))(t, clock)
	})
}

func TestConformanceMiniredisClientTime(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, clock *backendtest.Clock) backendtest.Harness {
		return miniredisHarness(WithClientClock(clock.Now))(t, clock)
	})
}
