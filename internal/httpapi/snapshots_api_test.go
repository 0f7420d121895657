package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

type stateJSON struct {
	Stream   string `json:"stream"`
	Version  int64  `json:"version"`
	Snapshot *struct {
		Version   int64           `json:"version"`
		CreatedAt string          `json:"created_at"`
		State     json.RawMessage `json:"state"`
	} `json:"snapshot"`
	Events []eventJSON `json:"events"`
}

func mustState(tb testing.TB, ts *testServer, path string) stateJSON {
	tb.Helper()
	r := ts.Do(tb, "GET", path, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("%s: %s", path, r)
	}
	var s stateJSON
	if err := json.Unmarshal(r.Body, &s); err != nil {
		tb.Fatalf("%s: %v: %s", path, err, r.Body)
	}
	return s
}

func TestSnapshotsAndState(t *testing.T) {
	ts := MustServer(t, nil)
	ts.MustAppend(t, "cart-1", 10)

	put := func(v int, state string) response {
		return ts.Do(t, "PUT", fmt.Sprintf("/v1/streams/cart-1/snapshots/%d", v), []byte(state), "Content-Type", "application/json")
	}
	r := put(4, `{"count": 4, "items": ["a", "b", "c", "d"]}`)
	if r.Status != http.StatusCreated {
		t.Fatal(r)
	}
	info := r.JSON(t)
	if info["stream"] != "cart-1" || info["version"] != float64(4) || info["size"] != float64(len(`{"count": 4, "items": ["a", "b", "c", "d"]}`)) ||
		info["stored_size"] == nil || info["stored_size"].(float64) <= 0 {
		t.Fatalf("put response %v", info)
	}
	if r := put(8, `{"count":8}`); r.Status != http.StatusCreated {
		t.Fatal(r)
	}
	// A gzip-encoded snapshot body.
	if r := ts.Do(t, "PUT", "/v1/streams/cart-1/snapshots/6", gz(t, []byte(`{"count":6}`)), "Content-Type", "application/json", "Content-Encoding", "gzip"); r.Status != http.StatusCreated {
		t.Fatal(r)
	}

	for q, want := range map[string]int64{"": 8, "?max_version=0": 8, "?max_version=7": 6, "?max_version=5": 4, "?max_version=4": 4, "?max_version=100": 8} {
		r := ts.Do(t, "GET", "/v1/streams/cart-1/snapshots/latest"+q, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %s", q, r)
		}
		m := r.JSON(t)
		if m["version"] != float64(want) || m["stream"] != "cart-1" || m["created_at"] == nil {
			t.Fatalf("latest%s = %v, want version %d", q, m, want)
		}
		if got, wantState := m["state"], map[string]any{"count": float64(want)}; want != 4 && !reflect.DeepEqual(got, wantState) {
			t.Fatalf("latest%s state %v", q, got)
		}
	}
	MustProblem(t, ts.Do(t, "GET", "/v1/streams/cart-1/snapshots/latest?max_version=3", nil), 404, "snapshot_not_found")
	if got := ts.Do(t, "GET", "/v1/streams/cart-1", nil).JSON(t)["latest_snapshot_version"]; got != float64(8) {
		t.Fatalf("info latest_snapshot_version = %v, want 8", got)
	}

	for _, tc := range []struct {
		query    string
		version  int64
		snapshot int64 // 0: none
		events   []int64
	}{
		{"", 10, 8, []int64{9, 10}},
		{"?at=10", 10, 8, []int64{9, 10}},
		{"?at=7", 7, 6, []int64{7}},
		{"?at=5", 5, 4, []int64{5}},
		{"?at=4", 4, 4, []int64{}},
		{"?at=3", 3, 0, []int64{1, 2, 3}},
	} {
		s := mustState(t, ts, "/v1/streams/cart-1/state"+tc.query)
		if s.Stream != "cart-1" || s.Version != tc.version {
			t.Fatalf("state%s: stream %s version %d", tc.query, s.Stream, s.Version)
		}
		switch {
		case tc.snapshot == 0 && s.Snapshot != nil:
			t.Fatalf("state%s: snapshot %d, want none", tc.query, s.Snapshot.Version)
		case tc.snapshot != 0 && (s.Snapshot == nil || s.Snapshot.Version != tc.snapshot):
			t.Fatalf("state%s: snapshot %+v, want version %d", tc.query, s.Snapshot, tc.snapshot)
		}
		if got := versions(s.Events); !reflect.DeepEqual(got, tc.events) {
			t.Fatalf("state%s: events %v, want %v", tc.query, got, tc.events)
		}
		if tc.snapshot == 8 && string(s.Snapshot.State) != `{"count":8}` {
			t.Fatalf("state%s: snapshot state %s", tc.query, s.Snapshot.State)
		}
	}

	// snapshot + tail equals the full replay's tail.
	full := mustPage(t, ts.Do(t, "GET", "/v1/streams/cart-1/events", nil))
	s := mustState(t, ts, "/v1/streams/cart-1/state")
	if !reflect.DeepEqual(s.Events, full.Events[8:]) {
		t.Fatalf("state tail %v differs from the stream's events 9..10 %v", s.Events, full.Events[8:])
	}

	t.Run("NoSnapshot", func(t *testing.T) {
		ts.MustAppend(t, "cart-2", 3)
		s := mustState(t, ts, "/v1/streams/cart-2/state")
		if s.Snapshot != nil || !reflect.DeepEqual(versions(s.Events), []int64{1, 2, 3}) {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("SnapshotTooLarge", func(t *testing.T) {
		big := `"` + strings.Repeat("0", testLimits.MaxSnapshotBytes+10) + `"`
		MustProblem(t, put(9, big), 413, "payload_too_large")
	})
}

func TestReadyz(t *testing.T) {
	ts := MustServer(t, nil)
	if r := ts.Do(t, "GET", "/healthz", nil); r.Status != 200 {
		t.Fatal(r)
	}
	r := ts.Do(t, "GET", "/readyz", nil)
	if r.Status != 200 || r.JSON(t)["status"] != "ready" {
		t.Fatal(r)
	}
	ts.API.Drain()
	MustProblem(t, ts.Do(t, "GET", "/readyz", nil), 503, "unavailable")
	if r := ts.Do(t, "GET", "/healthz", nil); r.Status != 200 {
		t.Fatalf("healthz while draining: %s", r)
	}
}

func TestReadyzStoreDown(t *testing.T) {
	ts := MustServer(t, nil)
	if r := ts.Do(t, "GET", "/readyz", nil); r.Status != 200 {
		t.Fatal(r)
	}
	ts.Store.Close()                    // Cassandra session gone: not ready
	time.Sleep(1100 * time.Millisecond) // past the last check's second
	MustProblem(t, ts.Do(t, "GET", "/readyz", nil), 503, "unavailable")
}
