package clienttest_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
)

// TestTimeTravel: StateAt and UntilTime on Read and Replay against the real
// server. The events are appended a few milliseconds apart, so each has a
// commit time of its own.
func TestTimeTravel(t *testing.T) {
	srv := MustServer(t)
	c := MustClient(t, srv)
	ctx := ctx(t)
	var times []time.Time // times[v-1]: commit time of version v
	for i := 1; i <= 6; i++ {
		if _, err := c.Append(ctx, "acct-1", client.Any, client.EventData{Type: "Tick", Data: map[string]int{"i": i}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	page, err := c.Read(ctx, "acct-1", client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range page.Events {
		if i > 0 && !ev.Time.After(times[i-1]) {
			t.Fatalf("versions %d and %d share a commit time %s", i, i+1, ev.Time)
		}
		times = append(times, ev.Time)
	}
	if _, err := c.PutSnapshot(ctx, "acct-1", 2, map[string]int{"i": 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutSnapshot(ctx, "acct-1", 5, map[string]int{"i": 5}); err != nil {
		t.Fatal(err)
	}

	t.Run("StateAt", func(t *testing.T) {
		for _, tc := range []struct {
			at                time.Time
			version, snapshot int64
			events            []int64
		}{
			{times[0], 1, 0, []int64{1}},
			{times[1].Add(-time.Nanosecond), 1, 0, []int64{1}},
			{times[1], 2, 2, []int64{}},
			{times[3].In(time.FixedZone("UTC+2", 2*3600)), 4, 2, []int64{3, 4}},
			{times[4].Add(time.Millisecond / 2), 5, 5, []int64{}},
			{times[5].Add(time.Hour), 6, 5, []int64{6}},
		} {
			st, err := c.StateAt(ctx, "acct-1", tc.at)
			if err != nil {
				t.Fatalf("at %s: %v", tc.at, err)
			}
			snap := int64(0)
			if st.Snapshot != nil {
				snap = st.Snapshot.Version
			}
			if st.Version != tc.version || snap != tc.snapshot || !slices.Equal(versions(st.Events), tc.events) {
				t.Fatalf("at %s: version %d, snapshot %d, events %v; want %d, %d, %v",
					tc.at, st.Version, snap, versions(st.Events), tc.version, tc.snapshot, tc.events)
			}
		}
		if _, err := c.StateAt(ctx, "acct-1", times[0].Add(-time.Millisecond)); !errors.Is(err, client.ErrStreamNotFound) {
			t.Fatalf("before the first event: %v, want ErrStreamNotFound", err)
		}
		if _, err := c.StateAt(ctx, "acct-404", times[5]); !errors.Is(err, client.ErrStreamNotFound) {
			t.Fatalf("missing stream: %v, want ErrStreamNotFound", err)
		}
	})
	t.Run("Read", func(t *testing.T) {
		for _, tc := range []struct {
			opts client.ReadOptions
			want []int64
			next int64
		}{
			{client.ReadOptions{UntilTime: times[3]}, []int64{1, 2, 3, 4}, 0},
			{client.ReadOptions{UntilTime: times[3], Limit: 3}, []int64{1, 2, 3}, 4},
			{client.ReadOptions{UntilTime: times[3], Backward: true, Limit: 3}, []int64{4, 3, 2}, 1},
			{client.ReadOptions{UntilTime: times[3], From: 5}, []int64{}, 0},
		} {
			p, err := c.Read(ctx, "acct-1", tc.opts)
			if err != nil {
				t.Fatalf("%+v: %v", tc.opts, err)
			}
			if got := versions(p.Events); !slices.Equal(got, tc.want) || p.Next != tc.next {
				t.Fatalf("%+v: %v next %d, want %v next %d", tc.opts, got, p.Next, tc.want, tc.next)
			}
		}
		if _, err := c.Read(ctx, "acct-1", client.ReadOptions{UntilTime: times[0].Add(-time.Millisecond)}); !errors.Is(err, client.ErrStreamNotFound) {
			t.Fatalf("before the first event: %v, want ErrStreamNotFound", err)
		}
	})
	t.Run("Replay", func(t *testing.T) {
		for _, tc := range []struct {
			opts client.ReplayOptions
			want []int64
		}{
			{client.ReplayOptions{UntilTime: times[4]}, []int64{1, 2, 3, 4, 5}},
			{client.ReplayOptions{UntilTime: times[4], Backward: true}, []int64{5, 4, 3, 2, 1}},
			{client.ReplayOptions{UntilTime: times[4], From: 2, To: 3}, []int64{2, 3}},
		} {
			evs, err := collect(t, c, "acct-1", tc.opts)
			if err != nil || !slices.Equal(versions(evs), tc.want) {
				t.Fatalf("%+v: %v %v, want %v", tc.opts, versions(evs), err, tc.want)
			}
		}
		evs, err := collect(t, c, "acct-1", client.ReplayOptions{UntilTime: times[0].Add(-time.Millisecond)})
		if !errors.Is(err, client.ErrStreamNotFound) || len(evs) != 0 {
			t.Fatalf("before the first event: %d events, %v; want ErrStreamNotFound", len(evs), err)
		}
	})
	t.Run("ReplayResumesWithUntilTime", func(t *testing.T) {
		// Cut after two events: the resumed request keeps until_time, so
		// the events appended since are not replayed.
		if _, err := c.Append(ctx, "acct-1", client.Any, client.EventData{Type: "Tick", Data: map[string]int{"i": 7}}); err != nil {
			t.Fatal(err)
		}
		px := MustProxy(t, srv)
		px.SetFault(func(p *proxy, k int, w http.ResponseWriter, r *http.Request) bool {
			if k == 1 {
				p.ForwardCut(w, r, 2, nil)
				return true
			}
			return false
		})
		evs, err := collect(t, MustClient(t, px.URL), "acct-1", client.ReplayOptions{UntilTime: times[5]})
		if err != nil || !slices.Equal(versions(evs), []int64{1, 2, 3, 4, 5, 6}) {
			t.Fatalf("%v %v", versions(evs), err)
		}
		reqs, _ := px.Requests()
		if len(reqs) != 2 || !strings.Contains(reqs[1].URL.RawQuery, "from=3") || reqs[1].URL.Query().Get("until_time") != times[5].UTC().Format(time.RFC3339Nano) {
			t.Fatalf("requests %v", reqs)
		}
	})
}
