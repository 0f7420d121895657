package main

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// churnChildEnv makes the test binary run the server process
// TestShardsOwnershipChurn kills.
const churnChildEnv = "EVENTLOG_TEST_CHURN_CHILD"

// TestShardsOwnershipChurn moves shard ownership under load among three
// instances: C (a real server process) creates the keyspace, A and B join,
// exact appenders write through every live instance; then C is killed
// (SIGKILL), D joins, A leaves (a graceful shutdown). Through it all every
// invariant holds: afterwards each shard has exactly one owner among the
// live instances, every acknowledged append is stored once at its
// versions, each stream is gapless, every append of unknown outcome is
// entirely there or entirely absent, and the all feed holds exactly what
// the streams hold.
func TestShardsOwnershipChurn(t *testing.T) {
	if spec := os.Getenv(churnChildEnv); spec != "" {
		runServeChild(t, spec)
		return
	}
	const shards = 8
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	flags := []string{"--shard-lease-ttl=1s"}
	child, childAddr := startChild(t, "TestShardsOwnershipChurn", churnChildEnv+"="+o.Keyspace+" "+strings.Join(o.Hosts, ",")+" --migrate --shards=8 "+strings.Join(flags, " "))
	a := MustRunMain(t, o, flags...)
	b := MustRunMain(t, o, flags...)

	var mu sync.Mutex
	live := []string{"http://" + childAddr, "http://" + a.Addr(), "http://" + b.Addr()}
	pick := func() string {
		mu.Lock()
		defer mu.Unlock()
		return live[rand.IntN(len(live))]
	}
	drop := func(base string) {
		mu.Lock()
		defer mu.Unlock()
		live = slices.DeleteFunc(live, func(s string) bool { return s == base })
	}
	owned := func(ms ...*Main) [][]int {
		var out [][]int
		for _, m := range ms {
			out = append(out, m.store.Owned())
		}
		return out
	}

	load := startLoad(t, "churn", 12, 16, pick)
	time.Sleep(3 * time.Second)

	// C dies with requests in flight through it and appends of its shards
	// forwarded to it.
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	drop("http://" + childAddr)
	time.Sleep(2 * time.Second)

	d := MustRunMain(t, o, flags...)
	mu.Lock()
	live = append(live, "http://"+d.Addr())
	mu.Unlock()
	time.Sleep(2 * time.Second)

	// A leaves: no new requests go to it, then it shuts down gracefully
	// (in-flight requests finish, its shards are released).
	drop("http://" + a.Addr())
	time.Sleep(200 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatalf("close A: %v", err)
	}
	time.Sleep(3 * time.Second)
	load.Stop()

	// Ownership settles on B and D: every shard owned, none twice.
	waitFor(t, 30*time.Second, "B and D to own every shard, each once", func() bool {
		all := slices.Concat(owned(b, d)...)
		slices.Sort(all)
		return len(all) == shards && len(slices.Compact(all)) == shards
	})
	t.Logf("owners after the churn: B %v, D %v", owned(b, d)[0], owned(b, d)[1])

	for _, m := range []*Main{b, d} {
		acked, unknown := load.check(t, "http://"+m.Addr())
		t.Logf("through %s: %d appends acknowledged, %d of unknown outcome, all consistent in streams and the all feed", m.Addr(), acked, unknown)
	}
}
