package redisserver

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of real redis-server processes on loopback.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns every node's address, for redis.ClusterOptions.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartCluster starts masters × (1 + replicas) cluster-enabled servers,
// assigns the slots with redis-cli --cluster create, and waits until every
// node reports cluster_state:ok. Failover is fast: a node is considered
// down after 1.5s. cluster-require-full-coverage is off, so that a dead
// master stops its own slots only, as a limiter's deployment should.
func StartCluster(tb testing.TB, masters, replicas int) *Cluster {
	tb.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		tb.Fatalf("redisserver: redis-cli not found: %v", err)
	}
	c := &Cluster{}
	for i := 0; i < masters*(1+replicas); i++ {
		c.Nodes = append(c.Nodes, startServer(tb, &Server{cluster: true, args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1500", "--cluster-replica-validity-factor", "0",
			"--cluster-require-full-coverage", "no",
		}}))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redisserver: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return c
}

// WaitHealthy waits until every live node reports cluster_state:ok with all
// slots assigned, and agrees with the others on who serves them.
func (c *Cluster) WaitHealthy(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := c.healthy()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redisserver: cluster not healthy after %v: %w", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) healthy() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		info, err := rdb.ClusterInfo(ctx).Result()
		_ = rdb.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") ||
			!strings.Contains(info, "cluster_slots_fail:0") {
			return fmt.Errorf("%s: %s", n.Addr, firstLines(info, 4))
		}
	}
	return nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "; ")
}

// MasterFor returns the live node currently serving key's slot as master.
func (c *Cluster) MasterFor(ctx context.Context, key string) (*Server, error) {
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		slot, err := rdb.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			_ = rdb.Close()
			continue
		}
		shards, err := rdb.ClusterShards(ctx).Result()
		_ = rdb.Close()
		if err != nil {
			continue
		}
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if r.Start > slot || slot > r.End {
					continue
				}
				for _, n := range sh.Nodes {
					if n.Role == "master" && n.Health == "online" {
						return c.byAddr(fmt.Sprintf("%s:%d", n.IP, n.Port))
					}
				}
			}
		}
	}
	return nil, fmt.Errorf("redisserver: no live node knows the master of %q", key)
}

func (c *Cluster) byAddr(addr string) (*Server, error) {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("redisserver: %s is not a node of this cluster", addr)
}

// NodeID returns a node's cluster id.
func NodeID(ctx context.Context, n *Server) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
	defer rdb.Close()
	return rdb.Do(ctx, "CLUSTER", "MYID").Text()
}
