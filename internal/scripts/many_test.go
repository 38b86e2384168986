package scripts

import (
	"context"
	"strconv"
	"strings"
	"testing"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
)

// Keys decided in one script call are decided independently: a key that
// is not a hash fails alone, the others are decided and written, and
// more keys than one call takes are split across calls of one pipeline.
func TestAcquireGroupsManyKeys(t *testing.T) {
	mr, rdb := fuzzBackend(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "srl:{squatted}", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	run := NewRunner(rdb, nil)
	it := item(srl.Request{Key: "k", N: 1, Limits: []srl.Limit{srl.PerMinute(1)}})
	var groups []Group
	for i := 0; i < MaxKeysPerCall+10; i++ {
		key := "srl:{k" + strconv.Itoa(i) + "}"
		if i == 3 {
			key = "srl:{squatted}"
		}
		groups = append(groups, Group{Key: key, Items: []keystate.Item{it, it}})
	}
	for round := 0; round < 2; round++ {
		run.AcquireGroups(ctx, groups)
		for gi, g := range groups {
			if gi == 3 {
				if g.Err == nil || !strings.Contains(g.Err.Error(), "WRONGTYPE") {
					t.Fatalf("round %d: the string key: %v, want WRONGTYPE", round, g.Err)
				}
				continue
			}
			if g.Err != nil {
				t.Fatalf("round %d group %d: %v", round, gi, g.Err)
			}
			// One a minute: the first request of the first round only.
			if want := round == 0; g.Results[0].Allowed != want || g.Results[1].Allowed {
				t.Fatalf("round %d group %d: %+v", round, gi, g.Results)
			}
		}
	}
	if !mr.Exists("srl:{k70}") || !mr.Exists("srl:{k4}") {
		t.Fatal("keys after the string key were not written")
	}
	if calls := len(run.plan(groups)); calls != 2 {
		t.Fatalf("%d keys went in %d calls, want 2", len(groups), calls)
	}

}
