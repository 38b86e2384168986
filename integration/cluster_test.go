package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backendtest"
	"github.com/smartratelimit/smartratelimit/integration/internal/redisserver"
	"github.com/smartratelimit/smartratelimit/internal/scripts"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// startCluster starts 3 masters with a replica each, or skips (fails under
// SRL_REQUIRE_REDIS=1) without redis-server.
func startCluster(t *testing.T) (*redisserver.Cluster, *redis.ClusterClient) {
	t.Helper()
	if !redisserver.Available() {
		noRedis(t, "the cluster tests start their own redis-server processes and none is on PATH")
	}
	c := redisserver.StartCluster(t, 3, 1)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), MaxRedirects: 8})
	t.Cleanup(func() { _ = cc.Close() })
	return c, cc
}

// TestConformanceOnCluster: the conformance suite through a ClusterClient
// on a real 3-master cluster.
func TestConformanceOnCluster(t *testing.T) {
	_, cc := startCluster(t)
	backendtest.Run(t, func(t *testing.T, clock *backendtest.Clock) backendtest.Harness {
		prefix := uniquePrefix(t)
		l := redislimit.New(cc, redislimit.WithKeyPrefix(prefix), redislimit.WithClientClock(clock.Now),
			redislimit.WithDecisionTimeout(10*time.Second))
		t.Cleanup(func() { _ = l.Close() })
		return backendtest.Harness{
			Backend: l,
			TTL: func(key string) (time.Duration, bool) {
				ttl, err := cc.PTTL(context.Background(), redislimit.RedisKey(prefix, key)).Result()
				if err != nil {
					t.Fatalf("PTTL: %v", err)
				}
				return ttl, ttl > 0
			},
			LimitFields: func(key string) int {
				fields, err := cc.HKeys(context.Background(), redislimit.RedisKey(prefix, key)).Result()
				if err != nil {
					t.Fatalf("HKEYS: %v", err)
				}
				return backendtest.LimitFieldsOf(fields)
			},
		}
	})
}

// TestClusterSlotsShareCalls: the slot the runner computes is the one the
// cluster computes, and keys of one slot decided together (one script call
// for several keys) are each decided on their own: under 64 goroutines,
// every key of a few shared slots admits exactly its one request a minute.
func TestClusterSlotsShareCalls(t *testing.T) {
	_, cc := startCluster(t)
	ctx := context.Background()
	prefix := uniquePrefix(t)
	// The cluster's word on a sample, then 4 slots of 8 keys found by ours.
	for i := 0; i < 200; i++ {
		rk := redislimit.RedisKey(prefix, "sample-"+strconv.Itoa(i))
		want, err := cc.ClusterKeySlot(ctx, rk).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := scripts.Slot(rk); int64(got) != want {
			t.Fatalf("Slot(%q) = %d, the cluster says %d", rk, got, want)
		}
	}
	bySlot, full := map[uint16][]string{}, map[uint16][]string{}
	for i := 0; len(full) < 4; i++ {
		key := "k" + strconv.Itoa(i)
		slot := scripts.Slot(redislimit.RedisKey(prefix, key))
		if bySlot[slot] = append(bySlot[slot], key); len(bySlot[slot]) == 8 {
			full[slot] = bySlot[slot]
		}
	}
	var keys []string
	for _, ks := range full {
		keys = append(keys, ks...)
	}
	l := redislimit.New(cc, redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(5*time.Second))
	defer l.Close()
	var admitted sync.Map
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 4*len(keys); i++ {
				key := keys[(g+i)%len(keys)]
				d, err := l.Allow(ctx, key, srl.PerMinute(1))
				if err != nil || d.Degraded {
					errs <- fmt.Errorf("%s: %+v, %v", key, d, err)
					return
				}
				if d.Allowed {
					n, _ := admitted.LoadOrStore(key, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, key := range keys {
		n, ok := admitted.Load(key)
		if !ok || n.(*atomic.Int64).Load() != 1 {
			t.Fatalf("%s admitted %v times, want exactly 1", key, n)
		}
	}
}

// TestClusterSpreadsKeys: keys land on every master, each script on one
// slot, with server time.
func TestClusterSpreadsKeys(t *testing.T) {
	c, cc := startCluster(t)
	prefix := uniquePrefix(t)
	l := redislimit.New(cc, redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(5*time.Second))
	defer l.Close()
	ctx := context.Background()
	masters := map[string]int{}
	for i := 0; i < 300; i++ {
		key := "api-" + strconv.Itoa(i) + ".example.com"
		for j := 0; j < 2; j++ {
			d, err := l.Allow(ctx, key, srl.PerMinute(1))
			if err != nil || d.Degraded || d.Allowed != (j == 0) {
				t.Fatalf("%s decision %d: %+v, %v", key, j, d, err)
			}
		}
		m, err := c.MasterFor(ctx, redislimit.RedisKey(prefix, key))
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Addr]++
	}
	if len(masters) != 3 {
		t.Fatalf("300 keys landed on %d masters: %v", len(masters), masters)
	}
}

// TestSlotMigrationUnderLoad moves the slot of a hot key to another master
// while 8 goroutines keep deciding on it: MOVED and ASK are followed and no
// decision fails or degrades, and the key's state moves with the slot.
func TestSlotMigrationUnderLoad(t *testing.T) {
	c, cc := startCluster(t)
	prefix := uniquePrefix(t)
	l := redislimit.New(cc, redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(5*time.Second))
	defer l.Close()
	ctx := context.Background()
	key := "migrating.example.com"
	rk := redislimit.RedisKey(prefix, key)
	limit := srl.PerSecond(100_000).WithBurst(100_000)

	ld := startLoad(l, 8, key, limit)
	time.Sleep(200 * time.Millisecond)

	src, err := c.MasterFor(ctx, rk)
	if err != nil {
		t.Fatal(err)
	}
	var dst *redisserver.Server
	for _, n := range c.Nodes {
		if n != src && isMaster(ctx, t, n) {
			dst = n
			break
		}
	}
	if dst == nil {
		t.Fatal("no other master to migrate to")
	}
	slot, err := cc.ClusterKeySlot(ctx, rk).Result()
	if err != nil {
		t.Fatal(err)
	}
	migrateSlot(ctx, t, c, src, dst, slot)
	time.Sleep(300 * time.Millisecond)
	ld.halt()

	if n := ld.errs.Load(); n != 0 {
		t.Fatalf("%d decisions failed during the migration; first: %v", n, ld.firstErr.Load())
	}
	if n := ld.degradedAdmitted.Load(); n != 0 {
		t.Fatalf("%d decisions degraded during the migration", n)
	}
	if now, err := c.MasterFor(ctx, rk); err != nil || now != dst {
		t.Fatalf("after the migration the key is served by %v (%v), want %s", now, err, dst.Addr)
	}
	direct := newClient(t, dst.Addr, nil)
	if n, err := direct.Exists(ctx, rk).Result(); err != nil || n != 1 {
		t.Fatalf("the key's state is not on the new master: %d, %v", n, err)
	}
}

func isMaster(ctx context.Context, t *testing.T, n *redisserver.Server) bool {
	t.Helper()
	rdb := newClient(t, n.Addr, nil)
	role, err := rdb.Do(ctx, "ROLE").Slice()
	return err == nil && len(role) > 0 && role[0] == "master"
}

// migrateSlot moves one slot from src to dst the way redis-cli --cluster
// reshard does: IMPORTING/MIGRATING, MIGRATE every key, then NODE on all.
func migrateSlot(ctx context.Context, t *testing.T, c *redisserver.Cluster, src, dst *redisserver.Server, slot int64) {
	t.Helper()
	srcID, err := redisserver.NodeID(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	dstID, err := redisserver.NodeID(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	s, d := newClient(t, src.Addr, nil), newClient(t, dst.Addr, nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err())
	must(s.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err())
	host, port := "127.0.0.1", strconv.Itoa(dst.Port)
	for {
		keys, err := s.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
		must(err)
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(s.Do(ctx, args...).Err())
		// Leave the load a moment to meet ASK redirections.
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range c.Nodes {
		if isMaster(ctx, t, n) {
			must(newClient(t, n.Addr, nil).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
		}
	}
}

// TestClusterMasterKilled: killing one master degrades the keys of its
// slots only; they recover once its replica is promoted, and keys on the
// other masters never notice.
func TestClusterMasterKilled(t *testing.T) {
	c, cc := startCluster(t)
	// Workers of limiters other tests left open are not this test's to count.
	othersWorkers := batchWorkers()
	prefix := uniquePrefix(t)
	tr := &transitions{}
	l := redislimit.New(cc, redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(300*time.Millisecond),
		redislimit.WithBreaker(3, 100*time.Millisecond, 500*time.Millisecond), redislimit.WithOnDegraded(tr.record))
	defer l.Close()
	ctx := context.Background()

	// Two keys on two different masters.
	victimKey, otherKey := "", ""
	var victim *redisserver.Server
	for i := 0; otherKey == ""; i++ {
		key := fmt.Sprintf("k%d.example.com", i)
		m, err := c.MasterFor(ctx, redislimit.RedisKey(prefix, key))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case victim == nil:
			victim, victimKey = m, key
		case m != victim:
			otherKey = key
		}
	}
	limit := srl.PerSecond(100_000).WithBurst(100_000)
	onVictim := startLoad(l, 4, victimKey, limit)
	onOther := startLoad(l, 4, otherKey, limit)
	time.Sleep(200 * time.Millisecond)

	victim.Kill()
	eventually(t, 5*time.Second, "the victim's keys degrade", func() bool { return onVictim.degradedAdmitted.Load() > 0 })
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the victim's keys are back on Redis after the promotion", func() bool {
		d, err := l.Allow(ctx, victimKey, limit)
		return err == nil && !d.Degraded
	})
	time.Sleep(200 * time.Millisecond)
	onVictim.halt()
	onOther.halt()

	if onOther.degradedAdmitted.Load() != 0 || onOther.errs.Load() != 0 {
		t.Fatalf("keys on a healthy master noticed: %d degraded, %d errors", onOther.degradedAdmitted.Load(), onOther.errs.Load())
	}
	if onVictim.errs.Load() != 0 {
		t.Fatalf("%d errors on the victim's keys under the default policy; first: %v", onVictim.errs.Load(), onVictim.firstErr.Load())
	}
	// The dead master's breaker is retired by traffic that notices the new
	// topology, at most a second apart.
	eventually(t, 5*time.Second, "the limiter reports recovery", func() bool {
		_, _ = l.Allow(ctx, victimKey, limit)
		return !l.Degraded()
	})
	tr.wantAlternating(t, 1)
	// The dead master's batch workers are retired too: only the two live
	// masters the keys use keep theirs (one set each).
	perNode := max(3, min(runtime.GOMAXPROCS(0), 8)) // redislimit's batchWorkers
	eventually(t, 15*time.Second, "the dead master's workers retired", func() bool {
		_, _ = l.Allow(ctx, victimKey, limit)
		_, _ = l.Allow(ctx, otherKey, limit)
		return batchWorkers()-othersWorkers == 2*perNode
	})
}

// batchWorkers counts the goroutines of redislimit's per-node batchers.
func batchWorkers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "redislimit.(*batcher).work(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestSentinelFailover: a primary watched by sentinels dies; decisions
// degrade, then return to Redis on the promoted replica.
func TestSentinelFailover(t *testing.T) {
	if !redisserver.Available() {
		noRedis(t, "the sentinel test starts its own redis-server processes and none is on PATH")
	}
	s := redisserver.StartSentinels(t, 1)
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs(), MaxRetries: -1})
	defer fc.Close()
	tr := &transitions{}
	l := redislimit.New(fc, redislimit.WithDecisionTimeout(300*time.Millisecond),
		redislimit.WithBreaker(3, 100*time.Millisecond, 500*time.Millisecond), redislimit.WithOnDegraded(tr.record))
	defer l.Close()
	ctx := context.Background()
	limit := srl.PerSecond(100_000).WithBurst(100_000)
	ld := startLoad(l, 4, "sentinel.example.com", limit)
	time.Sleep(200 * time.Millisecond)

	before, err := s.PrimaryAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Primary.Kill()
	eventually(t, 5*time.Second, "degraded", l.Degraded)
	eventually(t, 30*time.Second, "a new primary", func() bool {
		addr, err := s.PrimaryAddr(ctx)
		return err == nil && addr != before
	})
	eventually(t, 15*time.Second, "back on Redis", func() bool {
		d, err := l.Allow(ctx, "sentinel.example.com", limit)
		return err == nil && !d.Degraded
	})
	ld.halt()
	if n := ld.errs.Load(); n != 0 {
		t.Fatalf("%d errors across the failover; first: %v", n, ld.firstErr.Load())
	}
	tr.wantAlternating(t, 1)
}

// TestTLS: rediss:// with a certificate the test generates; a client that
// does not trust it gets a configuration error, not a silent fallback.
func TestTLS(t *testing.T) {
	if !redisserver.Available() {
		noRedis(t, "the TLS test starts its own redis-server and none is on PATH")
	}
	srv, caFile := redisserver.StartTLS(t)
	opts, err := redis.ParseURL("rediss://" + srv.Addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	opts.TLSConfig.RootCAs = pool
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(5*time.Second))
	defer l.Close()
	var allowed atomic.Int64
	for i := 0; i < 3; i++ {
		d, err := l.Allow(context.Background(), "tls.example.com", srl.PerMinute(2).WithBurst(2))
		if err != nil || d.Degraded {
			t.Fatalf("over TLS: %+v, %v", d, err)
		}
		if d.Allowed {
			allowed.Add(1)
		}
	}
	if allowed.Load() != 2 {
		t.Fatalf("admitted %d of a burst of 2 over TLS", allowed.Load())
	}

	untrusting := redis.NewClient(&redis.Options{Addr: srv.Addr, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}})
	defer untrusting.Close()
	_, err = redislimit.New(untrusting, redislimit.WithDecisionTimeout(5*time.Second)).Allow(context.Background(), "tls.example.com", srl.PerMinute(1))
	if !errors.Is(err, redislimit.ErrMisconfigured) {
		t.Fatalf("an untrusted certificate: %v, want ErrMisconfigured", err)
	}
}
