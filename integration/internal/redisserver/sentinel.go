package redisserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinels is a primary, its replicas, and the sentinels watching them.
type Sentinels struct {
	MasterName string
	Primary    *Server
	Replicas   []*Server
	Sentinels  []*Server
}

// Addrs returns the sentinels' addresses, for redis.FailoverOptions.
func (s *Sentinels) Addrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartSentinels starts a primary, replicas replicas of it and three
// sentinels (quorum 2) that declare it down after 1s, and waits until the
// sentinels see every replica.
func StartSentinels(tb testing.TB, replicas int) *Sentinels {
	tb.Helper()
	s := &Sentinels{MasterName: "srl-primary"}
	s.Primary = Start(tb)
	for i := 0; i < replicas; i++ {
		s.Replicas = append(s.Replicas, Start(tb, "--replicaof", "127.0.0.1", strconv.Itoa(s.Primary.Port)))
	}
	for i := 0; i < 3; i++ {
		dir := tb.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\n"+
			"sentinel parallel-syncs %[1]s 1\n", s.MasterName, s.Primary.Port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		s.Sentinels = append(s.Sentinels, startServer(tb, &Server{Dir: dir, conf: conf, args: []string{"--sentinel"}}))
	}
	if err := s.waitReplicas(replicas, 30*time.Second); err != nil {
		tb.Fatal(err)
	}
	return s
}

// waitReplicas waits until every sentinel reports n replicas online.
func (s *Sentinels) waitReplicas(n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		ok := true
		for _, sn := range s.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr, MaxRetries: -1})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			reps, err := sc.Replicas(ctx, s.MasterName).Result()
			cancel()
			_ = sc.Close()
			if err != nil || len(reps) < n {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redisserver: sentinels do not see %d replicas after %v", n, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PrimaryAddr asks a sentinel which address is the primary now.
func (s *Sentinels) PrimaryAddr(ctx context.Context) (string, error) {
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr, MaxRetries: -1})
		addr, err := sc.GetMasterAddrByName(ctx, s.MasterName).Result()
		_ = sc.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1], nil
		}
	}
	return "", fmt.Errorf("redisserver: no sentinel names a primary for %s", s.MasterName)
}
