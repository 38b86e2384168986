package redislimit

import (
	"strconv"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// The refusal cache holds at most denyShards × denyPerShard entries, for a
// million distinct refused keys.
func TestRefusalCacheIsBounded(t *testing.T) {
	c := newDenyCache()
	now := time.Now()
	d := srl.Decision{RetryAfter: time.Hour, Cause: srl.CauseQuota}
	for i := 0; i < 1_000_000; i++ {
		c.remember("srl:{k"+strconv.Itoa(i)+"}", 1, d, 0, now)
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].entries)
	}
	if n > denyShards*denyPerShard {
		t.Fatalf("%d refusals cached, bound %d", n, denyShards*denyPerShard)
	}
	if _, ok := c.lookup("srl:{k999999}", 1, now); !ok {
		t.Fatal("the newest refusal was not cached")
	}
	// Trust ends within MaxRefusalTrust, whatever the refusal's length.
	if _, ok := c.lookup("srl:{k999999}", 1, now.Add(MaxRefusalTrust)); ok {
		t.Fatal("a refusal was trusted past MaxRefusalTrust")
	}
}
