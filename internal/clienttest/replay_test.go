package clienttest_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/eventlog/eventlog/client"
)

// replayEvents is more than a few buckets of bucketMaxEvents.
const replayEvents = 3500

// mustAppendN appends n events to stream, 500 per append; event i (from
// 1) carries {"i":i}.
func mustAppendN(t *testing.T, c *client.Client, stream string, n int) {
	t.Helper()
	for first := 1; first <= n; first += 500 {
		var evs []client.EventData
		for i := first; i < first+500 && i <= n; i++ {
			evs = append(evs, client.EventData{Type: "Tick", Data: map[string]int{"i": i}})
		}
		if _, err := c.Append(ctx(t), stream, client.Exact(int64(first-1)), evs...); err != nil {
			t.Fatal(err)
		}
	}
}

// collect runs a replay to its end.
func collect(t *testing.T, c *client.Client, stream string, opts client.ReplayOptions) ([]client.Event, error) {
	t.Helper()
	var evs []client.Event
	for ev, err := range c.Replay(ctx(t), stream, opts) {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// mustRun checks evs are exactly the versions from..to (to < from:
// backward), each once, with their own data.
func mustRun(t *testing.T, evs []client.Event, from, to int64) {
	t.Helper()
	step := int64(1)
	if to < from {
		step = -1
	}
	if want := (to-from)*step + 1; int64(len(evs)) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	for k, e := range evs {
		want := from + int64(k)*step
		if e.Version != want {
			t.Fatalf("event %d is version %d, want %d", k, e.Version, want)
		}
		var d struct{ I int64 }
		if err := e.DecodeData(&d); err != nil || d.I != want || e.Stream == "" {
			t.Fatalf("event %d: %+v %v", want, e, err)
		}
	}
}

func TestReplay(t *testing.T) {
	srv := MustServer(t)
	mustAppendN(t, MustClient(t, srv), "tick-1", replayEvents)
	const n = int64(replayEvents)
	// The info read first has the owner write the stream's whole tail,
	// which a loaded machine may not finish within one request's timeout.
	info, err := MustClient(t, srv).StreamInfo(ctx(t), "tick-1")
	for tries := 0; err != nil && tries < 3; tries++ {
		info, err = MustClient(t, srv).StreamInfo(ctx(t), "tick-1")
	}
	if err != nil || info.Buckets < 3 {
		t.Fatalf("info %+v, %v; want the events in several buckets", info, err)
	}

	t.Run("Forward", func(t *testing.T) {
		evs, err := collect(t, MustClient(t, srv), "tick-1", client.ReplayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustRun(t, evs, 1, n)
	})
	t.Run("BackwardRange", func(t *testing.T) {
		evs, err := collect(t, MustClient(t, srv), "tick-1", client.ReplayOptions{From: 990, To: 1010, Backward: true})
		if err != nil {
			t.Fatal(err)
		}
		mustRun(t, evs, 1010, 990)
	})
	t.Run("ErrStreamNotFound", func(t *testing.T) {
		evs, err := collect(t, MustClient(t, srv), "tick-404", client.ReplayOptions{})
		if !errors.Is(err, client.ErrStreamNotFound) || len(evs) != 0 {
			t.Fatalf("%d events, err %v; want ErrStreamNotFound", len(evs), err)
		}
	})
	t.Run("Break", func(t *testing.T) {
		k := 0
		for ev, err := range MustClient(t, srv).Replay(ctx(t), "tick-1", client.ReplayOptions{}) {
			if err != nil || ev.Version != int64(k+1) {
				t.Fatalf("event %d: %+v %v", k, ev, err)
			}
			if k++; k == 10 {
				break
			}
		}
	})

	// The proxy cuts the stream mid-line after cuts[i] events on request
	// i+1; the client resumes after the last complete event.
	for _, tc := range []struct {
		name     string
		opts     client.ReplayOptions
		from, to int64
		cuts     []int
		resumes  []string // the query of each resumed request
	}{
		{"ResumeForward", client.ReplayOptions{}, 1, n, []int{1234, 1000, 0},
			[]string{"from=1", "from=1235", "from=2235", "from=2235"}},
		{"ResumeForwardRange", client.ReplayOptions{From: 10, To: 2500}, 10, 2500, []int{5},
			[]string{"from=10&to=2500", "from=15&to=2500"}},
		{"ResumeBackward", client.ReplayOptions{Backward: true}, n, 1, []int{700, 2000},
			[]string{"direction=backward&from=1", fmt.Sprintf("direction=backward&from=1&to=%d", n-700), fmt.Sprintf("direction=backward&from=1&to=%d", n-2700)}},
		{"CutBeforeLast", client.ReplayOptions{To: 100}, 1, 100, []int{99},
			[]string{"from=1&to=100", "from=100&to=100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := MustProxy(t, srv)
			px.SetFault(func(p *proxy, k int, w http.ResponseWriter, r *http.Request) bool {
				if k <= len(tc.cuts) {
					p.ForwardCut(w, r, tc.cuts[k-1], nil)
					return true
				}
				return false
			})
			evs, err := collect(t, MustClient(t, px.URL), "tick-1", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			mustRun(t, evs, tc.from, tc.to)
			reqs, _ := px.Requests()
			var got []string
			for _, r := range reqs {
				got = append(got, r.URL.RawQuery)
				if a := r.Header.Get("Accept"); a != "application/x-ndjson, application/problem+json" {
					t.Fatalf("Accept %q", a)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.resumes) {
				t.Fatalf("requests %q, want %q", got, tc.resumes)
			}
		})
	}

	t.Run("GiveUpWithoutProgress", func(t *testing.T) {
		px := MustProxy(t, srv)
		px.SetFault(func(p *proxy, k int, w http.ResponseWriter, r *http.Request) bool {
			cut := 0
			if k == 1 {
				cut = 50
			}
			p.ForwardCut(w, r, cut, nil)
			return true
		})
		evs, err := collect(t, MustClient(t, px.URL), "tick-1", client.ReplayOptions{})
		if err == nil || len(evs) != 50 {
			t.Fatalf("%d events, err %v; want 50 then an error", len(evs), err)
		}
		if reqs, _ := px.Requests(); len(reqs) != 1+fastRetry.MaxAttempts {
			t.Fatalf("%d requests, want 1 + %d attempts without progress", len(reqs), fastRetry.MaxAttempts)
		}
	})
}
