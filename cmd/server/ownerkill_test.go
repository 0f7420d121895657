package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
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
		runOwnerChild(t, spec)
		return
	}
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	flags := []string{"--write-path=shards", "--shard-lease-ttl=1s", "--fill-delay=1m"}
	// The child migrates and takes every shard; the survivor joins and
	// takes its share by handover.
	child, _ := startChild(t, "TestShardsOwnerKilled", ownerChildEnv+"="+o.Keyspace+" "+strings.Join(o.Hosts, ",")+" --migrate --shards=4 "+strings.Join(flags, " "))
	// The shards spread by rendezvous hashing of random instance ids: once
	// ownership holds still, the child must own at least one (one time in
	// sixteen the survivor gets all four; it then rejoins under another id).
	var b *Main
	owned := func() int { return len(b.store.(interface{ Owned() []int }).Owned()) }
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

	type attempt struct {
		ids     []string
		version int64 // acknowledged first version; 0: outcome unknown
	}
	const streams, writers = 8, 8
	var (
		mu       sync.Mutex
		attempts = map[string][]attempt{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 20 * time.Second}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("kill-%d", w%streams)
			cur := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := attempt{ids: []string{uuid.NewString(), uuid.NewString()}}
				body := fmt.Sprintf(`{"expected_version":%d,"events":[{"id":%q,"type":"K","data":{}},{"id":%q,"type":"K","data":{}}]}`, cur, a.ids[0], a.ids[1])
				if cur == 0 {
					body = strings.Replace(body, `"expected_version":0`, `"expected_version":"no_stream"`, 1)
				}
				res, err := client.Post(base+"/v1/streams/"+stream+"/events", "application/json", strings.NewReader(body))
				code, raw := 0, []byte(nil)
				if err == nil {
					raw, _ = io.ReadAll(res.Body)
					res.Body.Close()
					code = res.StatusCode
				}
				var r struct {
					FirstVersion   int64  `json:"first_version"`
					LastVersion    int64  `json:"last_version"`
					Code           string `json:"code"`
					CurrentVersion *int64 `json:"current_version"`
				}
				json.Unmarshal(raw, &r)
				switch {
				case code == http.StatusCreated:
					a.version = r.FirstVersion
					cur = r.LastVersion
				case code == http.StatusConflict && r.Code == "wrong_expected_version" && r.CurrentVersion != nil:
					cur = *r.CurrentVersion
					continue // nothing written
				case code == http.StatusBadRequest || code == http.StatusConflict:
					t.Errorf("%s: %d %s", stream, code, raw)
					return
				default:
					// Unknown (a transport error, 503, 504): the stream's
					// head says where to go on.
					time.Sleep(100 * time.Millisecond)
					if v, ok := headOf(client, base, stream); ok {
						cur = v
					}
				}
				mu.Lock()
				attempts[stream] = append(attempts[stream], a)
				mu.Unlock()
			}
		}()
	}
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
	close(stop)
	wg.Wait()

	acked, unknown := 0, 0
	stored := map[string][]string{} // stream -> ids in version order
	for s := 0; s < streams; s++ {
		stream := fmt.Sprintf("kill-%d", s)
		evs := readStream(t, client, base, stream)
		for _, e := range evs {
			stored[stream] = append(stored[stream], e.ID)
		}
		at := map[string]int64{}
		for i, e := range evs {
			if e.Version != int64(i+1) {
				t.Fatalf("%s: event %d has version %d: a gap", stream, i, e.Version)
			}
			if _, dup := at[e.ID]; dup {
				t.Fatalf("%s: id %s stored twice", stream, e.ID)
			}
			at[e.ID] = e.Version
		}
		for _, a := range attempts[stream] {
			v0, ok0 := at[a.ids[0]]
			v1, ok1 := at[a.ids[1]]
			switch {
			case a.version > 0:
				acked++
				if !ok0 || !ok1 || v0 != a.version || v1 != a.version+1 {
					t.Fatalf("%s: acknowledged append at v%d stored at %d,%d (present %v,%v)", stream, a.version, v0, v1, ok0, ok1)
				}
			case ok0 != ok1 || ok0 && v1 != v0+1:
				t.Fatalf("%s: an append of unknown outcome is half there: %v@%d %v@%d", stream, ok0, v0, ok1, v1)
			default:
				unknown++
			}
		}
	}
	if acked == 0 {
		t.Fatal("nothing was acknowledged")
	}
	// The all feed, read from the beginning on the survivor, holds exactly
	// what the streams hold: every stored event once, each stream's in
	// version order, nothing else (an append of unknown outcome is in both
	// or in neither).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	byStream := map[string][]string{}
	seen := map[string]bool{}
	for _, e := range readNDJSON(t, ctx, base+"/v1/feeds/all") {
		if seen[e.ID] {
			t.Fatalf("feed: event %s (%s@%d) twice", e.ID, e.Stream, e.Version)
		}
		seen[e.ID] = true
		if want := int64(len(byStream[e.Stream]) + 1); e.Version != want {
			t.Fatalf("feed: %s@%d where version %d was due", e.Stream, e.Version, want)
		}
		byStream[e.Stream] = append(byStream[e.Stream], e.ID)
	}
	for s := 0; s < streams; s++ {
		stream := fmt.Sprintf("kill-%d", s)
		if got, want := strings.Join(byStream[stream], ","), strings.Join(stored[stream], ","); got != want {
			t.Fatalf("feed: %s has %d events in the all feed, %d in the stream, or another order", stream, len(byStream[stream]), len(stored[stream]))
		}
	}
	if len(byStream) != streams {
		t.Fatalf("feed: events of %d streams, want %d", len(byStream), streams)
	}
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

// runOwnerChild serves on the shards path until killed.
func runOwnerChild(t *testing.T, spec string) {
	parts := strings.Fields(spec)
	o := cassandra.Options{Keyspace: parts[0], Hosts: strings.Split(parts[1], ",")}
	m := NewMain()
	args := append([]string{"--listen=127.0.0.1:0", "--keyspace=" + o.Keyspace, "--cassandra-hosts=" + strings.Join(o.Hosts, ",")}, parts[2:]...)
	if err := m.Config.ParseFlags("server", args, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", m.Addr())
	select {}
}
