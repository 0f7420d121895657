package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/partition"
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
	// b traces (as does a, by the variable; to no collector): the store
	// it serves is then the tracing wrapper, and its internal routes must
	// still reach the shard store.
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
	a := MustRunMain(t, o, "--migrate", "--shards=4", "--shard-lease-ttl=1s", "--fill-delay=1m")
	b := MustRunMain(t, o, "--shard-lease-ttl=1s", "--fill-delay=1m", "--tracing")
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

// TestShardsForwardBatches: appends that one instance forwards to the
// owner of their shards while its earlier forwards are in flight share
// requests, and each still gets its own answer: concurrent appends all
// committed at their own versions, a stale expected version refused
// alone.
func TestShardsForwardBatches(t *testing.T) {
	const shards = 4
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	a := MustRunMain(t, o, "--migrate", "--shards=4", "--shard-lease-ttl=1s")
	b := MustRunMain(t, o, "--shard-lease-ttl=1s")
	ownedBy := func(m *Main) []int { return m.store.Owned() }
	waitFor(t, 30*time.Second, "both instances to own shards", func() bool {
		return len(ownedBy(a)) > 0 && len(ownedBy(b)) > 0 && len(ownedBy(a))+len(ownedBy(b)) == shards
	})
	// Streams whose shard b owns, written through a.
	var streams []string
	for i := 0; len(streams) < 16; i++ {
		s := fmt.Sprintf("batch-%d", i)
		if slices.Contains(ownedBy(b), partition.ShardOf(s, shards)) {
			streams = append(streams, s)
		}
	}
	forwards := func() float64 {
		res, err := http.Get("http://" + b.Addr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		n := 0.0
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "eventlog_http_requests_total{") && strings.Contains(line, `route="/internal/v1/appends"`) {
				var v float64
				fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%g", &v)
				n += v
			}
		}
		return n
	}
	before := forwards()
	const per = 8 // appends per stream, all at once
	type answer struct {
		code int
		body map[string]any
	}
	answers := make([][]answer, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		answers[i] = make([]answer, per+1)
		for j := 0; j <= per; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := `{"events":[{"type":"T","data":{}}]}`
				if j == per {
					// Stale: the stream has at least this one's siblings.
					body = `{"expected_version":0,"events":[{"type":"T","data":{}}]}`
				}
				res, err := http.Post("http://"+a.Addr()+"/v1/streams/"+s+"/events", "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				defer res.Body.Close()
				answers[i][j].code = res.StatusCode
				json.NewDecoder(res.Body).Decode(&answers[i][j].body)
			}()
		}
	}
	wg.Wait()
	for i, s := range streams {
		seen := map[float64]bool{}
		for j, an := range answers[i] {
			switch {
			case j < per && an.code == http.StatusCreated:
				v, _ := an.body["first_version"].(float64)
				if seen[v] || v < 1 || v > per+1 {
					t.Errorf("%s: version %v answered twice or out of range: %v", s, v, an.body)
				}
				seen[v] = true
			case j == per && (an.code == http.StatusConflict && an.body["code"] == "wrong_expected_version" ||
				an.code == http.StatusCreated && an.body["first_version"] == float64(1)):
				// Refused as stale, or first of all to commit.
				if an.code == http.StatusCreated {
					seen[1] = true
				}
			default:
				t.Errorf("%s append %d: %d %v", s, j, an.code, an.body)
			}
		}
		if got := len(readStream(t, http.DefaultClient, "http://"+a.Addr(), s)); got != len(seen) {
			t.Errorf("%s: %d events stored, %d acknowledged", s, got, len(seen))
		}
	}
	n := forwards() - before
	t.Logf("%d appends forwarded in %v requests", len(streams)*(per+1), n)
	if n < 1 || n >= float64(len(streams)*(per+1)) {
		t.Fatalf("%v forward requests for %d appends sent at once: not batched", n, len(streams)*(per+1))
	}
}
