package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// testClock is an injectable store clock that moves only when told.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// MustClockServer is MustServer over a store whose commit times come from
// clock, with hour-wide buckets, so a test decides when each event was
// committed and when buckets roll over.
func MustClockServer(tb testing.TB, clock *testClock) *testServer {
	tb.Helper()
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Limits = testLimits
		o.Registerer = reg
		o.Now = clock.Now
		o.BucketWidth = time.Hour
		o.BucketMaxEvents = int64(testLimits.MaxEventsPerAppend)
	})
	api, err := httpapi.New(store, httpapi.Config{Limits: testLimits, Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Store: store, Opts: opts, API: api, Server: httptest.NewServer(api)}
	tb.Cleanup(ts.Close)
	return ts
}

// at formats t for a query parameter.
func at(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }

// ndjson reads a replay response's events.
func ndjson(tb testing.TB, r response) []eventJSON {
	tb.Helper()
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-ndjson" {
		tb.Fatalf("replay: %s", r)
	}
	var out []eventJSON
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		var e eventJSON
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			tb.Fatalf("line %q: %v", sc.Bytes(), err)
		}
		out = append(out, e)
	}
	return out
}

func seq(from, to int64) []int64 {
	out := []int64{}
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

func rev(vs []int64) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[len(vs)-1-i] = v
	}
	return out
}

// TestTimeTravel: state?at_time and events?until_time over a stream whose
// 60 events span four buckets (three rolled over by time, one by the row
// cap), with snapshots before and after the moments asked about.
func TestTimeTravel(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := &testClock{}
	// The store starts the feed watermark at its clock when it opens, and
	// commits only after it: open it a second before t0.
	clock.ns.Store(t0.Add(-time.Second).UnixNano())
	ts := MustClockServer(t, clock)

	// Commit times: versions 1-5 at t0, 6-10 at t0+10ms (bucket 0), 11-20
	// at t0+2h (bucket 1: bucket 0's hour is over), 21-70 at t0+2h+5ms
	// (bucket 2: 50 more would overflow bucket 1), 71 at t0+5h (bucket 3).
	appendAt := func(d time.Duration, n int) {
		t.Helper()
		clock.ns.Store(t0.Add(d).UnixNano())
		ts.MustAppend(t, "acct-1", n)
	}
	appendAt(0, 5)
	appendAt(10*time.Millisecond, 5)
	appendAt(2*time.Hour, 10)
	appendAt(2*time.Hour+5*time.Millisecond, 50)
	appendAt(5*time.Hour, 1)
	if got := ts.Do(t, "GET", "/v1/streams/acct-1", nil).JSON(t)["buckets"]; got != float64(4) {
		t.Fatalf("buckets = %v, want 4", got)
	}
	for _, v := range []int{3, 10, 15, 71} {
		r := ts.Do(t, "PUT", fmt.Sprintf("/v1/streams/acct-1/snapshots/%d", v), []byte(fmt.Sprintf(`{"v":%d}`, v)), "Content-Type", "application/json")
		if r.Status != http.StatusCreated {
			t.Fatal(r)
		}
	}
	full := mustPage(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?limit=1000", nil))
	if len(full.Events) != 71 || full.Events[0].Time != "2026-05-01T12:00:00.000000Z" || full.Events[70].Time != "2026-05-01T17:00:00.000000Z" {
		t.Fatalf("stream: %d events, %s .. %s", len(full.Events), full.Events[0].Time, full.Events[len(full.Events)-1].Time)
	}

	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		at       time.Time
		version  int64
		snapshot int64 // 0: none
	}{
		{"FirstMoment", t0, 5, 3},
		{"JustBeforeSecondAppend", t0.Add(10*ms - time.Nanosecond), 5, 3},
		{"ExactlySecondAppend", t0.Add(10 * ms), 10, 10},
		{"BetweenBuckets", t0.Add(time.Hour), 10, 10},
		{"ExactlyBucket1", t0.Add(2 * time.Hour), 20, 15},
		{"SubMillisecond", t0.Add(2*time.Hour + 4*ms + 999*time.Microsecond), 20, 15},
		{"ExactlyBucket2", t0.Add(2*time.Hour + 5*ms), 70, 15},
		{"JustBeforeHead", t0.Add(5*time.Hour - time.Nanosecond), 70, 15},
		{"ExactlyHead", t0.Add(5 * time.Hour), 71, 71},
		{"FarFuture", t0.AddDate(10, 0, 0), 71, 71},
	} {
		t.Run("State/"+tc.name, func(t *testing.T) {
			s := mustState(t, ts, "/v1/streams/acct-1/state?at_time="+at(tc.at))
			if s.Stream != "acct-1" || s.Version != tc.version {
				t.Fatalf("version %d, want %d", s.Version, tc.version)
			}
			if tc.snapshot == 0 && s.Snapshot != nil || tc.snapshot != 0 && (s.Snapshot == nil || s.Snapshot.Version != tc.snapshot || string(s.Snapshot.State) != fmt.Sprintf(`{"v":%d}`, tc.snapshot)) {
				t.Fatalf("snapshot %+v, want %d", s.Snapshot, tc.snapshot)
			}
			if want := full.Events[tc.snapshot:tc.version]; !reflect.DeepEqual(s.Events, want) {
				t.Fatalf("events %v, want %v", versions(s.Events), versions(want))
			}
			// The same as the state at that version.
			if byVersion := mustState(t, ts, fmt.Sprintf("/v1/streams/acct-1/state?at=%d", tc.version)); !reflect.DeepEqual(s, byVersion) {
				t.Fatalf("at_time gives %+v, at=%d gives %+v", s, tc.version, byVersion)
			}
		})
		t.Run("Events/"+tc.name, func(t *testing.T) {
			until := "until_time=" + at(tc.at)
			want := seq(1, tc.version)
			if got := versions(mustPage(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?limit=1000&"+until, nil)).Events); !reflect.DeepEqual(got, want) {
				t.Fatalf("page: %v, want %v", got, want)
			}
			// Forward pages of 4: next runs out exactly at the cut.
			var got []int64
			for from := int64(1); ; {
				p := mustPage(t, ts.Do(t, "GET", fmt.Sprintf("/v1/streams/acct-1/events?limit=4&from=%d&%s", from, until), nil))
				got = append(got, versions(p.Events)...)
				if p.Next == nil {
					break
				}
				from = *p.Next
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("forward pages: %v, want %v", got, want)
			}
			// Backward pages start at the cut.
			got = nil
			for to := int64(0); ; {
				q := "direction=backward&limit=4&" + until
				if to > 0 {
					q += fmt.Sprintf("&to=%d", to)
				}
				p := mustPage(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?"+q, nil))
				got = append(got, versions(p.Events)...)
				if p.Next == nil {
					break
				}
				to = *p.Next
			}
			if !reflect.DeepEqual(got, rev(want)) {
				t.Fatalf("backward pages: %v, want %v", got, rev(want))
			}
			// NDJSON replays, both ways, with the full events.
			fwd := ndjson(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?"+until, nil, "Accept", "application/x-ndjson"))
			if !reflect.DeepEqual(fwd, full.Events[:tc.version]) {
				t.Fatalf("replay: %v, want %v", versions(fwd), want)
			}
			back := ndjson(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?direction=backward&"+until, nil, "Accept", "application/x-ndjson"))
			if !reflect.DeepEqual(versions(back), rev(want)) {
				t.Fatalf("backward replay: %v, want %v", versions(back), rev(want))
			}
			// until_time and to together: the lower bound wins.
			if got := versions(mustPage(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?from=4&to=12&"+until, nil)).Events); !reflect.DeepEqual(got, seq(4, min(12, tc.version))) {
				t.Fatalf("from=4&to=12: %v", got)
			}
		})
	}

	t.Run("OffsetAndUnencodedPlus", func(t *testing.T) {
		// 14:00:00.010+02:00 is t0+10ms; a '+' sent unencoded arrives as a
		// space and is still understood.
		for _, q := range []string{"2026-05-01T14:00:00.010%2B02:00", "2026-05-01T14:00:00.010+02:00", "2026-05-01T12:00:00.01Z"} {
			if s := mustState(t, ts, "/v1/streams/acct-1/state?at_time="+q); s.Version != 10 {
				t.Fatalf("%s: version %d, want 10", q, s.Version)
			}
		}
	})
	t.Run("BeforeFirstEvent", func(t *testing.T) {
		// The stream did not exist yet: what /state and /events answered
		// at that moment.
		before := at(t0.Add(-time.Nanosecond))
		p := MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/state?at_time="+before, nil), http.StatusNotFound, "stream_not_found")
		if p["detail"] != "the stream had no events at or before that moment" {
			t.Fatalf("detail %q", p["detail"])
		}
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?until_time="+before, nil), http.StatusNotFound, "stream_not_found")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?direction=backward&until_time="+before, nil), http.StatusNotFound, "stream_not_found")
		r := ts.Do(t, "GET", "/v1/streams/acct-1/events?until_time="+before, nil, "Accept", "application/x-ndjson")
		MustProblem(t, r, http.StatusNotFound, "stream_not_found")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/state?at_time=0001-01-01T00:00:00Z", nil), http.StatusNotFound, "stream_not_found")
	})
	t.Run("EmptyRangeOfExistingStream", func(t *testing.T) {
		// The stream existed (10 events) but from=11 is past them: an
		// empty page, as a read past the head is.
		p := mustPage(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?from=11&until_time="+at(t0.Add(time.Hour)), nil))
		if len(p.Events) != 0 || p.Next != nil {
			t.Fatalf("page %+v", p)
		}
	})
	t.Run("MissingStream", func(t *testing.T) {
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-404/state?at_time="+at(t0), nil), http.StatusNotFound, "stream_not_found")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-404/events?until_time="+at(t0), nil), http.StatusNotFound, "stream_not_found")
	})
	t.Run("ErrInvalidRequest", func(t *testing.T) {
		for _, path := range []string{
			"/v1/streams/acct-1/state?at=3&at_time=" + at(t0),
			"/v1/streams/acct-1/state?at=&at_time=" + at(t0),
			"/v1/streams/acct-1/state?at_time=yesterday",
			"/v1/streams/acct-1/state?at_time=2026-05-01",
			"/v1/streams/acct-1/state?at_time=2026-05-01T12:00:00", // no offset
			"/v1/streams/acct-1/state?at_time=1714564800",          // not RFC 3339
			"/v1/streams/acct-1/state?at_time=" + at(t0) + "&at_time=" + at(t0),
			"/v1/streams/acct-1/events?until_time=2026-13-01T00:00:00Z",
		} {
			MustProblem(t, ts.Do(t, "GET", path, nil), http.StatusBadRequest, "invalid_request")
		}
		// An empty moment is no moment: refused, not taken for absent
		// (which answered the head), on pages, NDJSON and state.
		for _, path := range []string{
			"/v1/streams/acct-1/state?at_time=",
			"/v1/streams/acct-1/state?at=",
			"/v1/streams/acct-1/events?limit=1000&until_time=",
		} {
			MustProblem(t, ts.Do(t, "GET", path, nil), http.StatusBadRequest, "invalid_request")
		}
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?until_time=", nil, "Accept", "application/x-ndjson"), http.StatusBadRequest, "invalid_request")
	})
}
