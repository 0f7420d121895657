package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// testAppendRead: the API on a quiet keyspace, call by call — versions,
// expected versions, payloads, reads of every shape, Info, validation and
// snapshots, each read back from every instance.
func testAppendRead(t *testing.T, s *suite) {
	c := s.cluster(t, Config{MaxEventsPerAppend: MaxAppend})
	ctx := ctxT(t)
	stores := storesOf(t, c)
	last := stores[len(stores)-1]

	s.run(t, "Versions", func(t *testing.T) {
		const stream = "order-1"
		first := []log.ProposedEvent{{ID: uuid.Must(uuid.NewV7()), Type: "Created", Data: json.RawMessage(`{ "n" : 0 }`),
			Metadata: json.RawMessage(`{"corr": "x"}`)}}
		added := events(3, "Added")
		shipped := events(2, "Shipped")
		r1 := mustAppend(t, stores[0], stream, log.NoStream, first)
		r2 := mustAppend(t, last, stream, log.Any, added)
		r3 := mustAppend(t, stores[0], stream, 4, shipped)
		for i, c := range []struct {
			r           log.AppendResult
			first, last int64
		}{{r1, 1, 1}, {r2, 2, 4}, {r3, 5, 6}} {
			if c.r.FirstVersion != c.first || c.r.LastVersion != c.last || c.r.Duplicate || c.r.Time.IsZero() {
				t.Fatalf("append %d: %+v, want versions %d..%d, not a duplicate, with a time", i+1, c.r, c.first, c.last)
			}
		}
		if r2.Time.Before(r1.Time) || r3.Time.Before(r2.Time) {
			t.Fatalf("commit times go back: %v %v %v", r1.Time, r2.Time, r3.Time)
		}
		got := readEverywhere(t, stores, stream)
		if len(got) != 6 {
			t.Fatalf("%d events, want 6", len(got))
		}
		sent := append(append(append([]log.ProposedEvent{}, first...), added...), shipped...)
		for i, ev := range got {
			if ev.ID != sent[i].ID || ev.Type != sent[i].Type {
				t.Fatalf("version %d: id %s type %s, sent %s %s", ev.Version, ev.ID, ev.Type, sent[i].ID, sent[i].Type)
			}
		}
		// JSON is stored compacted; no metadata reads as none.
		if string(got[0].Data) != `{"n":0}` || string(got[0].Metadata) != `{"corr":"x"}` {
			t.Fatalf("version 1: data %s metadata %s, want compacted", got[0].Data, got[0].Metadata)
		}
		if string(got[2].Data) != `{"n":1}` || len(got[2].Metadata) != 0 {
			t.Fatalf("version 3: data %s metadata %q", got[2].Data, got[2].Metadata)
		}
		// Every event of an append carries the append's commit time.
		for _, c := range []struct {
			r        log.AppendResult
			from, to int64
		}{{r1, 1, 1}, {r2, 2, 4}, {r3, 5, 6}} {
			for v := c.from; v <= c.to; v++ {
				if !got[v-1].Time.Equal(c.r.Time) {
					t.Fatalf("version %d stored at %v, its append was acknowledged at %v", v, got[v-1].Time, c.r.Time)
				}
			}
		}
	})

	s.run(t, "GeneratedIDs", func(t *testing.T) {
		const stream = "gen-1"
		res := mustAppend(t, last, stream, log.Any, generated(3, "G"))
		got := readEverywhere(t, stores, stream)
		if len(got) != 3 {
			t.Fatalf("%d events, want 3", len(got))
		}
		for i, ev := range got {
			if ev.ID != res.Events[i].ID || ev.ID.Version() != 7 {
				t.Fatalf("version %d: id %s (acknowledged %s), want the acknowledged UUIDv7", ev.Version, ev.ID, res.Events[i].ID)
			}
		}
	})

	s.run(t, "ExpectedVersion", func(t *testing.T) {
		const stream = "ev-1"
		_, err := send(stores[0], stream, log.StreamExists, events(1, "E"))
		wantConflict(t, "exists on a new stream", err, stream, log.StreamExists, 0)
		_, err = send(stores[0], stream, 1, events(1, "E"))
		wantConflict(t, "exact 1 on a new stream", err, stream, 1, 0)
		mustAppend(t, stores[0], stream, log.NoStream, events(2, "E"))
		for _, st := range stores {
			_, err = send(st, stream, log.NoStream, events(1, "E"))
			wantConflict(t, "no_stream on an existing stream", err, stream, log.NoStream, 2)
			_, err = send(st, stream, 5, events(1, "E"))
			wantConflict(t, "exact ahead of the head", err, stream, 5, 2)
			_, err = send(st, stream, 1, events(2, "E"))
			wantConflict(t, "exact behind the head, new ids", err, stream, 1, 2)
			_, err = send(st, stream, 1, generated(1, "E"))
			wantConflict(t, "exact behind the head, generated ids", err, stream, 1, 2)
		}
		mustAppend(t, last, stream, log.StreamExists, events(1, "E"))
		mustAppend(t, stores[0], stream, 3, events(1, "E"))
		mustAppend(t, last, stream, log.Any, events(1, "E"))
		if got := readEverywhere(t, stores, stream); len(got) != 5 {
			t.Fatalf("%d events after refused appends, want 5", len(got))
		}
	})

	// A read that lends its memory (Borrowed: fn copies what it keeps)
	// reads what one that does not reads: chunks of every encoding (zstd
	// from 16 KiB, S2, plain), events with and without metadata, in an
	// order where each chunk may be decoded into the memory of a larger
	// one before it.
	s.run(t, "BorrowedReads", func(t *testing.T) {
		const stream = "lend-1"
		var sent []log.ProposedEvent
		for i, size := range []struct{ events, dataLen int }{{MaxAppend, 5000}, {MaxAppend, 300}, {1, 10}, {MaxAppend, 5000}, {3, 300}, {1, 10}, {MaxAppend, 4500}} {
			evs := events(size.events, fmt.Sprintf("Lent%d", i%3))
			for j := range evs {
				evs[j].Data = json.RawMessage(fmt.Sprintf(`{"i":%d,"j":%d,"s":%q}`, i, j, strings.Repeat(string(rune('a'+(i+j)%5)), size.dataLen)))
				if (i+j)%2 == 0 {
					evs[j].Metadata = json.RawMessage(fmt.Sprintf(`{"m":%d}`, i*100+j))
				}
			}
			mustAppend(t, stores[i%len(stores)], stream, log.Any, evs)
			sent = append(sent, evs...)
		}
		for _, r := range []log.ReadRange{{}, {Backward: true}, {From: 3, To: 14}, {Backward: true, From: 2, To: 20}} {
			r.Stream = stream
			for i, st := range stores {
				own := readAll(t, st, r)
				r.Borrowed = true
				lent := readAll(t, st, r)
				r.Borrowed = false
				if len(own) == 0 || len(lent) != len(own) {
					t.Fatalf("instance %d read %+v: %d events lent, %d not", i, r, len(lent), len(own))
				}
				for k, e := range lent {
					want := sent[e.Version-1]
					if e.Version != own[k].Version || e.ID != want.ID || e.Type != want.Type ||
						string(e.Data) != string(want.Data) || string(e.Metadata) != string(want.Metadata) {
						t.Fatalf("instance %d read %+v, version %d: %s %s %s %s, sent %s %s %s %s", i, r, e.Version,
							e.ID, e.Type, e.Data, e.Metadata, want.ID, want.Type, want.Data, want.Metadata)
					}
				}
			}
		}
	})

	s.run(t, "Reads", func(t *testing.T) {
		const stream = "range-1"
		for _, n := range []int{4, 4, 2} {
			mustAppend(t, stores[0], stream, log.Any, events(n, "R"))
		}
		for _, c := range []struct {
			r    log.ReadRange
			want []int64
		}{
			{log.ReadRange{}, span(1, 10)},
			{log.ReadRange{From: 1, To: 10}, span(1, 10)},
			{log.ReadRange{From: 3, To: 5}, span(3, 5)},
			{log.ReadRange{From: 7, To: 7}, []int64{7}},
			{log.ReadRange{To: 20}, span(1, 10)},
			{log.ReadRange{From: 10}, []int64{10}},
			{log.ReadRange{From: 11}, nil},
			{log.ReadRange{From: 11, To: 20}, nil},
			{log.ReadRange{Limit: 4}, span(1, 4)},
			{log.ReadRange{From: 8, Limit: 5}, span(8, 10)},
			{log.ReadRange{From: 2, To: 9, Limit: 3}, span(2, 4)},
			{log.ReadRange{Backward: true}, span(10, 1)},
			{log.ReadRange{Backward: true, Limit: 3}, span(10, 8)},
			{log.ReadRange{Backward: true, From: 2, Limit: 4}, span(10, 7)},
			{log.ReadRange{Backward: true, From: 3, To: 6}, span(6, 3)},
			{log.ReadRange{Backward: true, From: 3, To: 6, Limit: 2}, span(6, 5)},
			{log.ReadRange{Backward: true, To: 20}, span(10, 1)},
			{log.ReadRange{Backward: true, From: 11}, nil},
		} {
			for i, st := range stores {
				r := c.r
				r.Stream = stream
				wantVersions(t, fmt.Sprintf("instance %d read %+v", i, c.r), readAll(t, st, r), c.want)
			}
		}
		for _, r := range []log.ReadRange{{}, {Backward: true}, {From: 3, Limit: 1}, {UntilTime: time.Now().Add(time.Hour)}} {
			r.Stream = "missing-1"
			if got, err := tryReadAll(last, r); !errors.Is(err, log.ErrStreamNotFound) || len(got) != 0 {
				t.Fatalf("read %+v of a stream without events: %d events, %v; want ErrStreamNotFound", r, len(got), err)
			}
		}
		for _, r := range []log.ReadRange{{From: -1}, {To: -1}, {Limit: -1}, {From: 5, To: 3}} {
			r.Stream = stream
			_, err := tryReadAll(stores[0], r)
			wantValidation(t, fmt.Sprintf("read %+v", r), err, "")
		}
		_, err := tryReadAll(stores[0], log.ReadRange{Stream: "bad stream"})
		wantValidation(t, "read of a bad stream id", err, log.CodeInvalidStreamID)

		s.run(t, "Stop", func(t *testing.T) {
			for _, backward := range []bool{false, true} {
				calls := 0
				err := stores[0].ReadStream(ctx, log.ReadRange{Stream: stream, Backward: backward}, func(*log.RecordedEvent) error {
					calls++
					if calls == 3 {
						return log.ErrStop
					}
					return nil
				})
				if err != nil || calls != 3 {
					t.Fatalf("backward %v: ErrStop after 3 events: %d calls, %v", backward, calls, err)
				}
			}
		})
		s.run(t, "CallbackError", func(t *testing.T) {
			boom := errors.New("boom")
			calls := 0
			err := stores[0].ReadStream(ctx, log.ReadRange{Stream: stream}, func(*log.RecordedEvent) error {
				calls++
				return boom
			})
			if !errors.Is(err, boom) || calls != 1 {
				t.Fatalf("a callback error: %v after %d calls, want it returned after 1", err, calls)
			}
		})
	})

	s.run(t, "Info", func(t *testing.T) {
		for _, st := range stores {
			if _, err := st.Info(ctx, "nothing-here"); !errors.Is(err, log.ErrStreamNotFound) {
				t.Fatalf("a stream without events: %v, want not found", err)
			}
			_, err := st.Info(ctx, "bad stream")
			wantValidation(t, "info of a bad stream id", err, log.CodeInvalidStreamID)
		}
		const stream = "acct-7"
		mustAppend(t, stores[0], stream, log.Any, events(2, "A"))
		res := mustAppend(t, last, stream, log.Any, events(3, "B"))
		evs := readEverywhere(t, stores, stream)
		for i, st := range stores {
			info, err := st.Info(ctx, stream)
			if err != nil {
				t.Fatalf("instance %d: %v", i, err)
			}
			if info.Stream != stream || info.Category != "acct" || info.Version != 5 || info.LatestSnapshot != 0 {
				t.Fatalf("instance %d: info %+v", i, info)
			}
			if info.Buckets < 1 || info.CurrentBucket != int64(info.Buckets-1) {
				t.Fatalf("instance %d: %d buckets, current %d", i, info.Buckets, info.CurrentBucket)
			}
			if info.CreatedAt.IsZero() || info.CreatedAt.After(evs[0].Time) {
				t.Fatalf("instance %d: created at %v, first event at %v", i, info.CreatedAt, evs[0].Time)
			}
			if !info.UpdatedAt.Equal(res.Time) || !info.UpdatedAt.Equal(evs[4].Time) {
				t.Fatalf("instance %d: updated at %v, last append at %v, last event at %v", i, info.UpdatedAt, res.Time, evs[4].Time)
			}
		}
	})

	s.run(t, "VersionAt", func(t *testing.T) {
		// The basics on the real clock; Buckets/VersionAt probes every
		// boundary of a stream written on an injected one.
		const stream = "when-1"
		for i := 0; i < 3; i++ {
			mustAppend(t, stores[i%len(stores)], stream, log.Any, events(2, "W"))
		}
		evs := readEverywhere(t, stores, stream)
		for i, st := range stores {
			for _, c := range []struct {
				at   time.Time
				want int64
			}{
				{evs[0].Time.Add(-time.Millisecond), 0},
				{evs[0].Time, oracleVersionAt(evs, evs[0].Time)},
				{evs[2].Time, oracleVersionAt(evs, evs[2].Time)},
				{evs[5].Time, 6},
				{evs[5].Time.Add(time.Hour), 6},
			} {
				if got, err := st.VersionAt(ctx, stream, c.at); err != nil || got != c.want {
					t.Fatalf("instance %d: VersionAt(%s) = %d %v, want %d", i, c.at.Format(time.RFC3339Nano), got, err, c.want)
				}
			}
			if got, err := st.VersionAt(ctx, "nothing-here", evs[5].Time); err != nil || got != 0 {
				t.Fatalf("instance %d: VersionAt of a stream without events: %d %v", i, got, err)
			}
			_, err := st.VersionAt(ctx, "bad stream", evs[5].Time)
			wantValidation(t, "VersionAt of a bad stream id", err, log.CodeInvalidStreamID)
		}
	})

	s.run(t, "InvalidInput", func(t *testing.T) {
		const stream = "ok-1"
		id := uuid.Must(uuid.NewV7())
		for _, c := range []struct {
			name   string
			stream log.StreamID
			exp    log.ExpectedVersion
			evs    []log.ProposedEvent
			code   string
		}{
			{"BadStreamID", "bad stream", log.Any, events(1, "E"), log.CodeInvalidStreamID},
			{"EmptyStreamID", "", log.Any, events(1, "E"), log.CodeInvalidStreamID},
			{"NoEvents", stream, log.Any, nil, log.CodeInvalidEvent},
			{"BadData", stream, log.Any, []log.ProposedEvent{{Type: "E", Data: json.RawMessage(`{`)}}, log.CodeInvalidEvent},
			{"NoData", stream, log.Any, []log.ProposedEvent{{Type: "E"}}, log.CodeInvalidEvent},
			{"MetadataNotObject", stream, log.Any, []log.ProposedEvent{{Type: "E", Data: json.RawMessage(`1`), Metadata: json.RawMessage(`[1]`)}}, log.CodeInvalidEvent},
			{"BadType", stream, log.Any, []log.ProposedEvent{{Type: "bad type", Data: json.RawMessage(`1`)}}, log.CodeInvalidEvent},
			{"NoType", stream, log.Any, []log.ProposedEvent{{Data: json.RawMessage(`1`)}}, log.CodeInvalidEvent},
			{"IDTwice", stream, log.Any, []log.ProposedEvent{{ID: id, Type: "E", Data: json.RawMessage(`1`)}, {ID: id, Type: "E", Data: json.RawMessage(`2`)}}, log.CodeInvalidEvent},
			{"BadExpected", stream, -3, events(1, "E"), log.CodeInvalidExpectedVers},
			{"TooMany", stream, log.Any, events(MaxAppend+1, "E"), log.CodeTooManyEvents},
		} {
			for i, st := range stores {
				_, err := send(st, c.stream, c.exp, c.evs)
				wantValidation(t, fmt.Sprintf("%s on instance %d", c.name, i), err, c.code)
			}
		}
		if got, err := tryReadAll(stores[0], log.ReadRange{Stream: stream}); !errors.Is(err, log.ErrStreamNotFound) || len(got) != 0 {
			t.Fatalf("rejected appends wrote %d events (read: %v)", len(got), err)
		}
		if _, err := stores[0].Info(ctx, stream); !errors.Is(err, log.ErrStreamNotFound) {
			t.Fatalf("rejected appends created the stream: %v", err)
		}
	})

	s.run(t, "Snapshots", func(t *testing.T) { testSnapshots(t, s, stores) })
}

// counter is a toy aggregate: the sum of the events' "n" and their count.
type counter struct {
	Sum   int `json:"sum"`
	Count int `json:"count"`
}

func (c *counter) apply(ev *log.RecordedEvent) error {
	var d struct{ N int }
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return err
	}
	c.Sum += d.N
	c.Count++
	return nil
}

func testSnapshots(t *testing.T, s *suite, stores []log.Store) {
	const stream = "agg-1"
	ctx := ctxT(t)
	last := stores[len(stores)-1]
	for i := 0; i < 4; i++ {
		mustAppend(t, stores[i%len(stores)], stream, log.Any, events(3, "E")) // n = 0, 1, 2
	}
	fold := func(to int64) counter {
		var c counter
		if err := stores[0].ReadStream(ctx, log.ReadRange{Stream: stream, To: to}, c.apply); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, v := range []int64{5, 9} {
		state, _ := json.Marshal(fold(v))
		info, err := stores[0].PutSnapshot(ctx, stream, v, state)
		if err != nil {
			t.Fatalf("put snapshot at %d: %v", v, err)
		}
		if info.Stream != stream || info.Version != v || info.Size != len(state) || info.StoredSize <= 0 ||
			info.Compression == "" || info.CreatedAt.IsZero() {
			t.Fatalf("put snapshot at %d: %+v", v, info)
		}
	}
	for i, st := range stores {
		for _, c := range []struct{ max, want int64 }{{0, 9}, {100, 9}, {12, 9}, {9, 9}, {8, 5}, {5, 5}} {
			snap, err := st.LatestSnapshot(ctx, stream, c.max)
			if err != nil || snap.Version != c.want || snap.Stream != stream {
				t.Fatalf("instance %d: latest at or below %d: %+v %v, want version %d", i, c.max, snap.SnapshotInfo, err, c.want)
			}
			want, _ := json.Marshal(fold(c.want))
			if string(snap.State) != string(want) || snap.Size != len(want) {
				t.Fatalf("instance %d: snapshot %d state %s (size %d), stored %s", i, c.want, snap.State, snap.Size, want)
			}
		}
		for _, max := range []int64{4, 1} {
			if _, err := st.LatestSnapshot(ctx, stream, max); !errors.Is(err, log.ErrSnapshotNotFound) {
				t.Fatalf("instance %d: below the first snapshot (%d): %v, want not found", i, max, err)
			}
		}
		if _, err := st.LatestSnapshot(ctx, "nothing-1", 0); !errors.Is(err, log.ErrSnapshotNotFound) {
			t.Fatalf("instance %d: a stream without snapshots: %v", i, err)
		}
		info, err := st.Info(ctx, stream)
		if err != nil || info.LatestSnapshot != 9 {
			t.Fatalf("instance %d: info %+v %v, want latest snapshot 9", i, info, err)
		}
	}

	s.run(t, "Replace", func(t *testing.T) {
		// Storing a snapshot at a version again replaces it.
		state := json.RawMessage(`{"sum":-1,"count":-1}`)
		if _, err := last.PutSnapshot(ctx, stream, 9, state); err != nil {
			t.Fatal(err)
		}
		snap, err := stores[0].LatestSnapshot(ctx, stream, 0)
		if err != nil || snap.Version != 9 || string(snap.State) != string(state) {
			t.Fatalf("after replacing: %+v %s %v", snap.SnapshotInfo, snap.State, err)
		}
		good, _ := json.Marshal(fold(9))
		if _, err := last.PutSnapshot(ctx, stream, 9, good); err != nil {
			t.Fatal(err)
		}
	})

	s.run(t, "Invalid", func(t *testing.T) {
		for _, v := range []int64{0, -1, 13} {
			_, err := last.PutSnapshot(ctx, stream, v, json.RawMessage(`{}`))
			wantValidation(t, fmt.Sprintf("snapshot at %d of 12", v), err, log.CodeSnapshotVersion)
		}
		_, err := last.PutSnapshot(ctx, stream, 3, json.RawMessage(`{`))
		wantValidation(t, "snapshot of bad JSON", err, "")
		_, err = last.PutSnapshot(ctx, "bad stream", 1, json.RawMessage(`{}`))
		wantValidation(t, "snapshot of a bad stream id", err, log.CodeInvalidStreamID)
		if _, err := last.PutSnapshot(ctx, "nothing-1", 1, json.RawMessage(`{}`)); err == nil {
			t.Fatal("a snapshot of a stream without events was accepted")
		}
		if _, err := last.LatestSnapshot(ctx, "nothing-1", 0); !errors.Is(err, log.ErrSnapshotNotFound) {
			t.Fatalf("a refused snapshot was stored: %v", err)
		}
	})

	s.run(t, "StateIsSnapshotPlusTail", func(t *testing.T) {
		for _, at := range []int64{0, 12, 10, 9, 8, 5, 4, 1} {
			st, err := log.LoadState(ctx, last, stream, at)
			if err != nil {
				t.Fatalf("load at %d: %v", at, err)
			}
			var c counter
			if st.Snapshot != nil {
				if err := json.Unmarshal(st.Snapshot.State, &c); err != nil {
					t.Fatal(err)
				}
			}
			if !st.TailEmpty() {
				if err := last.ReadStream(ctx, st.Tail, c.apply); err != nil {
					t.Fatal(err)
				}
			}
			want := at
			if at == 0 {
				want = 12
			}
			if st.Version != want || c != fold(want) {
				t.Fatalf("state at %d: version %d %+v, want %+v", at, st.Version, c, fold(want))
			}
			if hasSnap := at >= 5 || at == 0; (st.Snapshot != nil) != hasSnap {
				t.Fatalf("state at %d: snapshot %v", at, st.Snapshot != nil)
			}
		}
		_, err := log.LoadState(ctx, last, stream, 13)
		wantValidation(t, "state above the head", err, "")
		if _, err := log.LoadState(ctx, last, "nothing-1", 0); !errors.Is(err, log.ErrStreamNotFound) {
			t.Fatalf("state of a stream without events: %v", err)
		}
	})

	s.run(t, "ReadState", func(t *testing.T) {
		// log.ReadState: the store's StateReader at the head, LoadState
		// and ReadTail elsewhere; the same states on every instance.
		for i, st := range stores {
			for _, at := range []int64{0, 12, 10, 9, 5, 4, 1} {
				got, c, err := readState(ctx, st, stream, at)
				if err != nil {
					t.Fatalf("instance %d: read state at %d: %v", i, at, err)
				}
				want := at
				if at == 0 {
					want = 12
				}
				if got.Version != want || c != fold(want) {
					t.Fatalf("instance %d: state at %d: version %d %+v, want %+v", i, at, got.Version, c, fold(want))
				}
				if hasSnap := at >= 5 || at == 0; (got.Snapshot != nil) != hasSnap {
					t.Fatalf("instance %d: state at %d: snapshot %v", i, at, got.Snapshot != nil)
				}
			}
			if _, _, err := readState(ctx, st, "nothing-1", 0); !errors.Is(err, log.ErrStreamNotFound) {
				t.Fatalf("instance %d: state of a stream without events: %v", i, err)
			}
			_, _, err := readState(ctx, st, stream, 13)
			wantValidation(t, "state above the head", err, "")
			_, _, err = readState(ctx, st, "bad stream", 0)
			wantValidation(t, "state of a bad stream id", err, log.CodeInvalidStreamID)
		}
		// A snapshot at the head: no events after it.
		const atHead = "agg-2"
		mustAppend(t, last, atHead, log.Any, events(4, "E"))
		if _, err := last.PutSnapshot(ctx, atHead, 4, json.RawMessage(`{"sum":6,"count":4}`)); err != nil {
			t.Fatal(err)
		}
		got, c, err := readState(ctx, stores[0], atHead, 0)
		if err != nil || got.Version != 4 || got.Snapshot == nil || !got.TailEmpty() || c != (counter{Sum: 6, Count: 4}) {
			t.Fatalf("state at a snapshot at the head: %+v %+v %v", got, c, err)
		}
	})

	s.run(t, "ReadStateWhileAppending", func(t *testing.T) {
		// States read while one instance appends and another puts
		// snapshots at the head it sees: each is a snapshot and the
		// events after it up to a head, whole and in order.
		const live = "agg-3"
		mustAppend(t, last, live, log.Any, events(1, "E"))
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		defer wg.Wait()
		stop := make(chan struct{})
		wg.Go(func() {
			defer close(stop)
			for i := 0; i < 60; i++ {
				if _, err := send(stores[i%len(stores)], live, log.Any, events(1+i%3, "E")); err != nil {
					t.Errorf("append %d: %v", i, err)
					return
				}
			}
		})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				h, err := headOf(stores[0], live)
				if err != nil {
					t.Errorf("head: %v", err)
					return
				}
				var c counter
				if err := stores[0].ReadStream(ctx, log.ReadRange{Stream: live, To: h}, c.apply); err != nil {
					t.Errorf("fold to %d: %v", h, err)
					return
				}
				state, _ := json.Marshal(c)
				if _, err := stores[0].PutSnapshot(ctx, live, h, state); err != nil {
					t.Errorf("snapshot at %d: %v", h, err)
					return
				}
			}
		})
		for n := 0; ; n++ {
			select {
			case <-stop:
				if n == 0 {
					t.Fatal("no state read while appending")
				}
				return
			default:
			}
			st := stores[n%len(stores)]
			got, c, err := readState(ctx, st, live, 0)
			if err != nil {
				t.Fatalf("read state: %v", err)
			}
			var want counter
			if err := st.ReadStream(ctx, log.ReadRange{Stream: live, To: got.Version}, want.apply); err != nil {
				t.Fatal(err)
			}
			if c != want {
				t.Fatalf("state at %d: %+v, the events to it fold to %+v", got.Version, c, want)
			}
		}
	})
}

// readState reads a state with log.ReadState and folds it.
func readState(ctx context.Context, s log.Store, stream log.StreamID, at int64) (log.State, counter, error) {
	var (
		got   log.State
		c     counter
		began bool
	)
	err := log.ReadState(ctx, s, stream, at, func(st log.State) error {
		if began {
			return errors.New("begin called twice")
		}
		began, got = true, st
		if st.Snapshot != nil {
			return json.Unmarshal(st.Snapshot.State, &c)
		}
		return nil
	}, func(e *log.RecordedEvent) error {
		if !began {
			return fmt.Errorf("event %d before begin", e.Version)
		}
		return c.apply(e)
	})
	return got, c, err
}
