package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// Two real servers on the shard-log path share a keyspace: each owns some
// shards and forwards appends for the others over HTTP. Exact appends to
// the same streams through both stay gapless; a retry through the other
// server is recognised; a client never sees which server owns what.
func TestShardsForwarding(t *testing.T) {
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	// A minute's fill delay: no stream is written before someone reads it, so
	// each read through the instance that does not own its shard needs the
	// owner to write it first (POST /internal/v1/flush).
	a := MustRunMain(t, o, "--migrate", "--write-path=shards", "--shards=4", "--shard-lease-ttl=1s", "--fill-delay=1m")
	b := MustRunMain(t, o, "--write-path=shards", "--shard-lease-ttl=1s", "--fill-delay=1m")
	bases := []string{"http://" + a.Addr(), "http://" + b.Addr()}

	post := func(base, stream, body string) (int, map[string]any) {
		t.Helper()
		res, err := http.Post(base+"/v1/streams/"+stream+"/events", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %s", res.Status, raw)
		}
		return res.StatusCode, out
	}
	const streams, writers, per = 6, 8, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := bases[w%2]
			for i := 0; i < per; i++ {
				stream := fmt.Sprintf("fwd-%d", (w+i)%streams)
				code, out := post(base, stream, `{"events":[{"type":"T","data":{}}]}`)
				if code != http.StatusCreated {
					t.Errorf("append through %s: %d %v", base, code, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for s := 0; s < streams; s++ {
		res, err := http.Get(fmt.Sprintf("%s/v1/streams/fwd-%d/events?limit=1000", bases[s%2], s))
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Events []struct{ Version int64 }
		}
		json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		for i, e := range page.Events {
			if e.Version != int64(i+1) {
				t.Fatalf("fwd-%d: event %d has version %d", s, i, e.Version)
			}
		}
		total += len(page.Events)
	}
	if total != writers*per {
		t.Fatalf("%d events stored, %d acknowledged", total, writers*per)
	}
	// An exact append and its retry through the other server.
	body := `{"expected_version":"no_stream","events":[{"id":"0190a1b2-0000-7000-8000-0000000000aa","type":"T","data":{"n":1}}]}`
	if code, out := post(bases[0], "retry-1", body); code != http.StatusCreated {
		t.Fatalf("first send: %d %v", code, out)
	}
	if code, out := post(bases[1], "retry-1", body); code != http.StatusOK || out["duplicate"] != true {
		t.Fatalf("retry through the other server: %d %v, want 200 duplicate", code, out)
	}
	if code, out := post(bases[1], "retry-1", `{"expected_version":0,"events":[{"type":"T","data":{}}]}`); code != http.StatusConflict || out["current_version"] != float64(1) {
		t.Fatalf("stale expected version through the other server: %d %v, want 409 at 1", code, out)
	}
}
