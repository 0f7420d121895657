package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/partition"
)

// pausedOwnerChildEnv makes the test binary run the server that
// TestForwardToStoppedOwnerProcess stops (SIGSTOP) instead of the tests.
const pausedOwnerChildEnv = "EVENTLOG_TEST_PAUSED_OWNER_CHILD"

// TestForwardToStoppedOwnerProcess stops (SIGSTOP) a real server process
// that owns a stream's shard, then appends to the stream through another
// instance, which forwards the append over HTTP. The stopped owner takes
// the connection and answers nothing, so the append waited out its
// deadline and was answered outcome_unknown, though the other instance
// took the shard over within a few lease TTLs. Now it is sent again to the
// new owner and committed there (201); the owner, resumed, finds the shard
// fenced, and each stream holds the append exactly once.
func TestForwardToStoppedOwnerProcess(t *testing.T) {
	if spec := os.Getenv(pausedOwnerChildEnv); spec != "" {
		runServeChild(t, spec)
		return
	}
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	flags := []string{"--shard-lease-ttl=1s"}
	child, _ := startChild(t, "TestForwardToStoppedOwnerProcess", pausedOwnerChildEnv+"="+o.Keyspace+" "+strings.Join(o.Hosts, ",")+" --migrate --shards=4 "+strings.Join(flags, " "))
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			child.Process.Signal(syscall.SIGCONT)
		}
	})
	// As in TestShardsOwnerKilled: the child must keep a shard.
	var b *Main
	owned := func() []int { return b.store.Owned() }
	for attempt := 0; ; attempt++ {
		b = MustRunMain(t, o, flags...)
		last, since, deadline := -1, time.Now(), time.Now().Add(30*time.Second)
		for time.Now().Before(deadline) && (last < 0 || time.Since(since) < 2*time.Second) {
			if n := len(owned()); n != last {
				last, since = n, time.Now()
			}
			time.Sleep(50 * time.Millisecond)
		}
		if last < 4 {
			break
		}
		if attempt == 4 {
			t.Fatal("the second instance owns every shard")
		}
		b.Close()
	}
	base := "http://" + b.Addr()
	var streams []string
	for i := 0; len(streams) < 2; i++ {
		if s := fmt.Sprintf("stopped-%d", i); !slices.Contains(owned(), partition.ShardOf(s, 4)) {
			streams = append(streams, s)
		}
	}
	appendBody := func(expected string) string {
		return `{"expected_version":` + expected + `,"events":[{"type":"T","data":{"n":1}},{"type":"T","data":{"n":2}}]}`
	}
	for _, s := range streams {
		if status, body := jsonRequest(t, "POST", base+"/v1/streams/"+s+"/events", appendBody(`"no_stream"`), ""); status != 201 {
			t.Fatalf("append to %s through the second instance: %d %s", s, status, body)
		}
	}
	if err := child.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		status int
		body   string
	}
	answers := make([]answer, len(streams))
	var wg sync.WaitGroup
	for i, expected := range []string{"2", `"any"`} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].status, answers[i].body = jsonRequest(t, "POST", base+"/v1/streams/"+streams[i]+"/events", appendBody(expected), "")
		}()
	}
	wg.Wait()
	if err := child.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	time.Sleep(2 * time.Second) // the owner, resumed, takes the forwards it held
	for i, s := range streams {
		a := answers[i]
		var res struct {
			FirstVersion int64 `json:"first_version"`
			Events       []struct {
				ID      string `json:"id"`
				Version int64  `json:"version"`
			} `json:"events"`
		}
		if a.status != 201 || json.Unmarshal([]byte(a.body), &res) != nil || res.FirstVersion != 3 || len(res.Events) != 2 {
			t.Fatalf("append to %s while its owner is stopped: %d %s; want 201 at versions 3..4", s, a.status, a.body)
		}
		evs := readStream(t, http.DefaultClient, base, s)
		if len(evs) != 4 {
			t.Fatalf("%s holds %d events, want 4: %v", s, len(evs), evs)
		}
		for j, e := range evs {
			if e.Version != int64(j+1) {
				t.Fatalf("%s: event %d at version %d", s, j, e.Version)
			}
		}
		for _, e := range res.Events {
			if evs[e.Version-1].ID != e.ID {
				t.Fatalf("%s: version %d holds %s, the answer says %s", s, e.Version, evs[e.Version-1].ID, e.ID)
			}
		}
	}
}
