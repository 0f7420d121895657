package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// ownerChildEnv makes the test binary run a plain shards-path server (the
// instance TestShardsOwnerKilled kills) instead of the tests.
const ownerChildEnv = "EVENTLOG_TEST_OWNER_CHILD"

// TestShardsOwnerKilled kills (SIGKILL) a real server process that owns
// shards while appends to them flow through another instance, which
// forwards them. The owner answers appends once committed and writes
// streams only when read (a minute's fill delay), so what it acknowledged
// is in its shard logs only. The survivor takes the shards over within a
// few lease TTLs; then every acknowledged event is in its stream exactly
// once at its acknowledged version, each stream is gapless, and every
// append whose outcome was unknown is entirely there or entirely absent.
func TestShardsOwnerKilled(t *testing.T) {
	if spec := os.Getenv(ownerChildEnv); spec != "" {
		runServeChild(t, spec)
		return
	}
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	flags := []string{"--shard-lease-ttl=1s", "--fill-delay=1m"}
	// The child migrates and takes every shard; the survivor joins and
	// takes its share by handover.
	child, _ := startChild(t, "TestShardsOwnerKilled", ownerChildEnv+"="+o.Keyspace+" "+strings.Join(o.Hosts, ",")+" --migrate --shards=4 "+strings.Join(flags, " "))
	// The shards spread by rendezvous hashing of random instance ids: once
	// ownership holds still, the child must own at least one (one time in
	// sixteen the survivor gets all four; it then rejoins under another id).
	var b *Main
	owned := func() int { return len(b.store.Owned()) }
	for attempt := 0; ; attempt++ {
		b = MustRunMain(t, o, flags...)
		last, since, deadline := -1, time.Now(), time.Now().Add(30*time.Second)
		for time.Now().Before(deadline) && (last < 0 || time.Since(since) < 2*time.Second) {
			if n := owned(); n != last {
				last, since = n, time.Now()
			}
			time.Sleep(50 * time.Millisecond)
		}
		if last < 4 {
			break
		}
		if attempt == 4 {
			t.Fatal("the survivor owns every shard before the kill")
		}
		b.Close()
	}
	base := "http://" + b.Addr()

	load := startLoad(t, "kill", 8, 8, func() string { return base })
	time.Sleep(2 * time.Second)
	killedAt := time.Now()
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Every shard is the survivor's within a few lease TTLs (and a
	// catch-up of what the dead owner had not written).
	waitFor(t, 20*time.Second, "the survivor to own every shard", func() bool { return owned() == 4 })
	t.Logf("the survivor owned every shard %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // appends go on through the new owner
	load.Stop()

	acked, unknown := load.check(t, base)
	t.Logf("%d appends acknowledged, %d of unknown outcome, all consistent in streams and the all feed", acked, unknown)
}

type storedEvent struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

func readStream(t *testing.T, client *http.Client, base, stream string) []storedEvent {
	t.Helper()
	var out []storedEvent
	for from := int64(1); from > 0; {
		res, err := client.Get(fmt.Sprintf("%s/v1/streams/%s/events?from=%d&limit=1000", base, stream, from))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var page struct {
			Events []storedEvent `json:"events"`
			Next   *int64        `json:"next"`
		}
		if res.StatusCode != http.StatusOK || json.Unmarshal(raw, &page) != nil {
			t.Fatalf("read %s from %d: %d %s", stream, from, res.StatusCode, raw)
		}
		out = append(out, page.Events...)
		from = 0
		if page.Next != nil {
			from = *page.Next
		}
	}
	return out
}

// headOf is a stream's version, if it can be read now.
func headOf(client *http.Client, base, stream string) (int64, bool) {
	res, err := client.Get(base + "/v1/streams/" + stream)
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return 0, true
	}
	var info struct {
		Version int64 `json:"version"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&info) != nil {
		return 0, false
	}
	return info.Version, true
}
