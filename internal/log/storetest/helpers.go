package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// opTimeout bounds one call of a body on the store: far above what any
// call needs on a loaded node, so hitting it means the store hangs.
const opTimeout = 2 * time.Minute

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// events returns n events of type typ with client-chosen ids (UUIDv7) and
// data {"n":i}.
func events(n int, typ string) []log.ProposedEvent {
	out := generated(n, typ)
	for i := range out {
		out[i].ID = uuid.Must(uuid.NewV7())
	}
	return out
}

// generated returns n events without ids: the store chooses them.
func generated(n int, typ string) []log.ProposedEvent {
	out := make([]log.ProposedEvent, n)
	for i := range out {
		out[i] = log.ProposedEvent{Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return out
}

func idsOf(evs []log.ProposedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// cloneEvents copies evs deeply: Validate rewrites a request's events in
// place (compacted JSON, generated ids), so every send gets its own copy,
// as it would over the wire.
func cloneEvents(evs []log.ProposedEvent) []log.ProposedEvent {
	out := make([]log.ProposedEvent, len(evs))
	for i, e := range evs {
		e.Data = bytes.Clone(e.Data)
		e.Metadata = bytes.Clone(e.Metadata)
		out[i] = e
	}
	return out
}

// send appends a copy of evs.
func send(s log.Store, stream log.StreamID, exp log.ExpectedVersion, evs []log.ProposedEvent) (log.AppendResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return s.Append(ctx, log.AppendRequest{Stream: stream, Expected: exp, Events: cloneEvents(evs)})
}

// mustAppend appends a copy of evs and checks the result describes them:
// their ids at consecutive versions.
func mustAppend(t testing.TB, s log.Store, stream log.StreamID, exp log.ExpectedVersion, evs []log.ProposedEvent) log.AppendResult {
	t.Helper()
	res, err := send(s, stream, exp, evs)
	if err != nil {
		t.Fatalf("append %d event(s) to %s (expected %v): %v", len(evs), stream, exp, err)
	}
	if err := resultDescribes(res, stream, evs); err != nil {
		t.Fatal(err)
	}
	return res
}

// resultDescribes checks that res acknowledges evs (ids as sent, or any
// when the store chose them) at consecutive versions of stream.
func resultDescribes(res log.AppendResult, stream log.StreamID, evs []log.ProposedEvent) error {
	n := int64(len(evs))
	switch {
	case res.Stream != stream:
		return fmt.Errorf("append to %s: result names stream %q", stream, res.Stream)
	case res.FirstVersion < 1 || res.LastVersion != res.FirstVersion+n-1:
		return fmt.Errorf("append of %d to %s: versions %d..%d", n, stream, res.FirstVersion, res.LastVersion)
	case len(res.Events) != len(evs):
		return fmt.Errorf("append of %d to %s: result lists %d events", n, stream, len(res.Events))
	}
	for i, e := range res.Events {
		if e.Version != res.FirstVersion+int64(i) {
			return fmt.Errorf("append to %s: event %d at version %d, first %d", stream, i, e.Version, res.FirstVersion)
		}
		if evs[i].ID != uuid.Nil && e.ID != evs[i].ID {
			return fmt.Errorf("append to %s: event %d has id %s, sent %s", stream, i, e.ID, evs[i].ID)
		}
		if e.ID == uuid.Nil {
			return fmt.Errorf("append to %s: event %d has no id", stream, i)
		}
	}
	return nil
}

// readAll reads r whole.
func readAll(t testing.TB, s log.Store, r log.ReadRange) []log.RecordedEvent {
	t.Helper()
	evs, err := tryReadAll(s, r)
	if err != nil {
		t.Fatalf("read %s %+v: %v", r.Stream, r, err)
	}
	return evs
}

func tryReadAll(s log.Store, r log.ReadRange) ([]log.RecordedEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var out []log.RecordedEvent
	err := s.ReadStream(ctx, r, func(ev *log.RecordedEvent) error {
		c := *ev
		c.Data, c.Metadata = bytes.Clone(ev.Data), bytes.Clone(ev.Metadata)
		out = append(out, c)
		return nil
	})
	return out, err
}

func versions(evs []log.RecordedEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

// span returns from, from+step, ... to (step ±1).
func span(from, to int64) []int64 {
	var out []int64
	if from <= to {
		for v := from; v <= to; v++ {
			out = append(out, v)
		}
	} else {
		for v := from; v >= to; v-- {
			out = append(out, v)
		}
	}
	return out
}

// checkGapless asserts the stream invariants on a whole read: versions
// 1..n in order (I3), each id once (I2), commit times never decreasing,
// each event naming its stream.
func checkGapless(t testing.TB, stream log.StreamID, evs []log.RecordedEvent) {
	t.Helper()
	seen := make(map[uuid.UUID]int64, len(evs))
	for i, ev := range evs {
		if ev.Version != int64(i+1) {
			t.Fatalf("%s: event %d has version %d, want %d (I3 gapless)", stream, i, ev.Version, i+1)
		}
		if ev.Stream != stream {
			t.Fatalf("%s: version %d names stream %q", stream, ev.Version, ev.Stream)
		}
		if v, dup := seen[ev.ID]; dup {
			t.Fatalf("%s: id %s at versions %d and %d (I2 no duplicates)", stream, ev.ID, v, ev.Version)
		}
		seen[ev.ID] = ev.Version
		if ev.Time.IsZero() {
			t.Fatalf("%s: version %d has no time", stream, ev.Version)
		}
		if i > 0 && ev.Time.Before(evs[i-1].Time) {
			t.Fatalf("%s: time goes back at version %d: %s < %s", stream, ev.Version,
				ev.Time.Format(time.RFC3339Nano), evs[i-1].Time.Format(time.RFC3339Nano))
		}
	}
}

// readEverywhere reads the whole stream from every instance, checks each
// read is gapless and that all instances read the same events, and
// returns the first instance's read.
func readEverywhere(t testing.TB, stores []log.Store, stream log.StreamID) []log.RecordedEvent {
	t.Helper()
	var first []log.RecordedEvent
	for i, s := range stores {
		evs := readAll(t, s, log.ReadRange{Stream: stream})
		checkGapless(t, stream, evs)
		if i == 0 {
			first = evs
			continue
		}
		if len(evs) != len(first) {
			t.Fatalf("%s: instance %d reads %d events, instance 0 reads %d", stream, i, len(evs), len(first))
		}
		for j := range evs {
			if !sameRecorded(&evs[j], &first[j]) {
				t.Fatalf("%s: version %d differs between instance 0 (%+v) and %d (%+v)", stream, evs[j].Version, first[j], i, evs[j])
			}
		}
	}
	return first
}

func sameRecorded(a, b *log.RecordedEvent) bool {
	return a.Stream == b.Stream && a.ID == b.ID && a.Type == b.Type && a.Version == b.Version &&
		a.Time.Equal(b.Time) && bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Metadata, b.Metadata)
}

// wantVersions fails unless evs are exactly want, in order.
func wantVersions(t testing.TB, what string, evs []log.RecordedEvent, want []int64) {
	t.Helper()
	if got := versions(evs); !slices.Equal(got, want) {
		t.Fatalf("%s: versions %v, want %v", what, got, want)
	}
}

// isConflict reports whether err is a wrong expected version error,
// returning it.
func isConflict(err error) (*log.WrongExpectedVersionError, bool) {
	var wev *log.WrongExpectedVersionError
	return wev, errors.As(err, &wev)
}

// wantConflict fails unless err is a wrong expected version at current.
func wantConflict(t testing.TB, what string, err error, stream log.StreamID, exp log.ExpectedVersion, current int64) {
	t.Helper()
	wev, ok := isConflict(err)
	if !ok {
		t.Fatalf("%s: %v, want wrong expected version (current %d)", what, err, current)
	}
	if wev.Current != current || wev.Stream != stream || wev.Expected != exp {
		t.Fatalf("%s: %+v, want stream %s, expected %v, current %d", what, wev, stream, exp, current)
	}
}

// wantValidation fails unless err is a *log.ValidationError with code.
func wantValidation(t testing.TB, what string, err error, code string) {
	t.Helper()
	var ve *log.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%s: %v, want a validation error %s", what, err, code)
	}
	if code != "" && ve.Code != code {
		t.Fatalf("%s: validation error %s (%v), want %s", what, ve.Code, ve, code)
	}
}

// headOf returns the stream's version by Info (0 when it has no events).
func headOf(s log.Store, stream log.StreamID) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	info, err := s.Info(ctx, stream)
	if errors.Is(err, log.ErrStreamNotFound) {
		return 0, nil
	}
	return info.Version, err
}

// clock is an injectable clock: it runs at real speed from the moment it
// was set to, and a body can step it forward or back. (A clock that never
// moves is no model of a server: leases renewed to the same instant look
// unrenewed to the other instances.)
type clock struct {
	start  time.Time // monotonic
	offset atomic.Int64
}

func newClock(at time.Time) *clock {
	c := &clock{start: time.Now()}
	c.offset.Store(at.UnixNano())
	return c
}

func (c *clock) Now() time.Time {
	return time.Unix(0, c.offset.Load()).Add(time.Since(c.start)).UTC()
}

func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// sameClock gives every instance the clock c.
func sameClock(c *clock) func(int) func() time.Time {
	return func(int) func() time.Time { return c.Now }
}

// epoch is where the bodies' injected clocks start: a fixed date, so
// buckets and times are reproducible.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
