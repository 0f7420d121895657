package shardstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/catalog"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// newKeyspace migrates a fresh keyspace with shards shards.
func newKeyspace(t *testing.T, shards int) cassandra.Options {
	t.Helper()
	o := cassandratest.Options(t)
	o.Shards = shards
	o.SegmentRows = 50 // small: tests cross segments
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cassandra.Migrate(ctx, o); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	return o
}

func open(t *testing.T, o shardstore.Options) *shardstore.Store {
	t.Helper()
	if o.LeaseTTL == 0 {
		o.LeaseTTL = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := shardstore.Open(ctx, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func ev(id uuid.UUID, typ string, data string) log.ProposedEvent {
	return log.ProposedEvent{ID: id, ClientID: true, Type: typ, Data: json.RawMessage(data)}
}

// appendN appends n events to stream, in appends of at most 500 (the
// first with exp, the others with any): the result is the last append's.
func appendN(ctx context.Context, s *shardstore.Store, stream string, exp log.ExpectedVersion, n int) (log.AppendResult, error) {
	var (
		res log.AppendResult
		err error
	)
	for i := 0; i < n; {
		req := log.AppendRequest{Stream: log.StreamID(stream), Expected: exp}
		for ; i < n && len(req.Events) < 500; i++ {
			req.Events = append(req.Events, ev(uuid.New(), "Tested", fmt.Sprintf(`{"i":%d}`, i)))
		}
		if res, err = s.Append(ctx, req); err != nil {
			return res, err
		}
		exp = log.Any
	}
	return res, nil
}

func readAll(t *testing.T, s *shardstore.Store, stream string) []log.RecordedEvent {
	t.Helper()
	var out []log.RecordedEvent
	err := s.ReadStream(context.Background(), log.ReadRange{Stream: log.StreamID(stream)}, func(e *log.RecordedEvent) error {
		c := *e
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return out
}

func checkGapless(t *testing.T, stream string, evs []log.RecordedEvent, want int) {
	t.Helper()
	if len(evs) != want {
		t.Fatalf("%s: %d events, want %d", stream, len(evs), want)
	}
	ids := map[uuid.UUID]bool{}
	for i, e := range evs {
		if e.Version != int64(i+1) {
			t.Fatalf("%s: event %d has version %d", stream, i, e.Version)
		}
		if ids[e.ID] {
			t.Fatalf("%s: id %s twice", stream, e.ID)
		}
		ids[e.ID] = true
		if i > 0 && e.Time.Before(evs[i-1].Time) {
			t.Fatalf("%s: time goes back at %d", stream, e.Version)
		}
	}
}

func TestAppendRead(t *testing.T) {
	o := newKeyspace(t, 4)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	if got := len(s.Owned()); got != 4 {
		t.Fatalf("owns %d shards, want all 4", got)
	}
	r, err := appendN(ctx, s, "order-1", log.NoStream, 3)
	if err != nil || r.FirstVersion != 1 || r.LastVersion != 3 || r.Duplicate {
		t.Fatalf("first append: %+v %v", r, err)
	}
	r, err = appendN(ctx, s, "order-1", 3, 2)
	if err != nil || r.FirstVersion != 4 || r.LastVersion != 5 {
		t.Fatalf("second append: %+v %v", r, err)
	}
	_, err = appendN(ctx, s, "order-1", 3, 1)
	var wev *log.WrongExpectedVersionError
	if !errors.As(err, &wev) || wev.Current != 5 {
		t.Fatalf("stale expected: %v, want wrong expected version at 5", err)
	}
	checkGapless(t, "order-1", readAll(t, s, "order-1"), 5)
	info, err := s.Info(ctx, "order-1")
	if err != nil || info.Version != 5 || info.Category != "order" || info.Buckets != 1 {
		t.Fatalf("info: %+v %v", info, err)
	}
	var back []int64
	err = s.ReadStream(ctx, log.ReadRange{Stream: "order-1", From: 2, To: 4, Backward: true}, func(e *log.RecordedEvent) error {
		back = append(back, e.Version)
		return nil
	})
	if err != nil || !slices.Equal(back, []int64{4, 3, 2}) {
		t.Fatalf("backward 2..4: %v %v", back, err)
	}
	if _, err := s.Info(ctx, "order-2"); !errors.Is(err, log.ErrStreamNotFound) {
		t.Fatalf("info of a new stream: %v", err)
	}
}

// TestEmptyReadRacesAppend: a read that finds its range empty, then a
// head in it (an append committed and written in between), reads the
// range again rather than answering from a moment that never was; a
// stream without events is ErrStreamNotFound, an empty range nil.
func TestEmptyReadRacesAppend(t *testing.T) {
	o := newKeyspace(t, 2)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	if _, err := appendN(ctx, s, "race-2", log.NoStream, 2); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		r    log.ReadRange
		want []int64
	}{
		{log.ReadRange{Stream: "race-2", From: 3}, []int64{3}},
		{log.ReadRange{Stream: "race-2", From: 4, To: 4, Backward: true}, []int64{4}},
		{log.ReadRange{Stream: "race-2", From: 5, Backward: true, Limit: 1}, []int64{5}},
	} {
		hooks := 0
		shardstore.SetReadHook(s, func() {
			if hooks++; hooks > 1 {
				return
			}
			// Between the empty read and its head read: an append, and
			// a reader that has it written (every read flushes).
			if _, err := appendN(ctx, s, string(c.r.Stream), log.Any, 1); err != nil {
				t.Error(err)
			}
			if _, err := s.Info(ctx, c.r.Stream); err != nil {
				t.Error(err)
			}
		})
		var got []int64
		err := s.ReadStream(ctx, c.r, func(e *log.RecordedEvent) error {
			got = append(got, e.Version)
			return nil
		})
		if err != nil || !slices.Equal(got, c.want) || hooks != 1 {
			t.Fatalf("read %+v racing an append: %v, %v after %d empty reads; want %v", c.r, got, err, hooks, c.want)
		}
	}
	shardstore.SetReadHook(s, nil)
	for _, c := range []struct {
		r       log.ReadRange
		missing bool
	}{
		{log.ReadRange{Stream: "race-9"}, true},
		{log.ReadRange{Stream: "race-9", Backward: true, Limit: 1}, true},
		{log.ReadRange{Stream: "race-2", From: 6}, false},
		{log.ReadRange{Stream: "race-2", From: 7, Backward: true}, false},
	} {
		err := s.ReadStream(ctx, c.r, func(e *log.RecordedEvent) error {
			return fmt.Errorf("read %+v: event %d", c.r, e.Version)
		})
		if c.missing && !errors.Is(err, log.ErrStreamNotFound) || !c.missing && err != nil {
			t.Fatalf("read %+v with nothing in range: %v (stream missing: %v)", c.r, err, c.missing)
		}
	}
}

// TestIdempotentRetries runs on a new stream, whose first versions' ids
// are found in its chunks, and on one past streams.LowVersions, whose ids
// are in stream_ids.
func TestIdempotentRetries(t *testing.T) {
	o := newKeyspace(t, 2)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	pres := []int{0, streams.LowVersions}
	reqs := make([]log.AppendRequest, len(pres))
	for i, pre := range pres {
		stream := fmt.Sprintf("user-%d", pre)
		if pre > 0 {
			if _, err := appendN(ctx, s, stream, log.Any, pre); err != nil {
				t.Fatal(err)
			}
		}
		a := log.AppendRequest{Stream: log.StreamID(stream), Expected: log.Any, Events: []log.ProposedEvent{ev(uuid.New(), "A", `1`), ev(uuid.New(), "B", `2`)}}
		reqs[i] = a
		r1, err := s.Append(ctx, a)
		if err != nil || r1.FirstVersion != int64(pre)+1 {
			t.Fatalf("%s: %+v %v", stream, r1, err)
		}
		if _, err := appendN(ctx, s, stream, log.Any, 1); err != nil {
			t.Fatal(err)
		}
		r2, err := s.Append(ctx, a) // an "any" retry
		if err != nil || !r2.Duplicate || r2.FirstVersion != r1.FirstVersion {
			t.Fatalf("%s: any retry: %+v %v, want duplicate of %+v", stream, r2, err, r1)
		}
		ex := a
		ex.Expected = log.ExpectedVersion(pre)
		r3, err := s.Append(ctx, ex) // an exact retry
		if err != nil || !r3.Duplicate || r3.FirstVersion != r1.FirstVersion {
			t.Fatalf("%s: exact retry: %+v %v", stream, r3, err)
		}
		part := log.AppendRequest{Stream: a.Stream, Expected: log.Any, Events: a.Events[:1]}
		if _, err := s.Append(ctx, part); !errors.Is(err, log.ErrIdempotencyConflict) {
			t.Fatalf("%s: partial repeat: %v, want idempotency conflict", stream, err)
		}
		changed := a
		changed.Events = slices.Clone(a.Events)
		changed.Events[1].Data = json.RawMessage(`3`)
		if _, err := s.Append(ctx, changed); !errors.Is(err, log.ErrIdempotencyConflict) {
			t.Fatalf("%s: changed payload: %v, want idempotency conflict", stream, err)
		}
	}
	// Where the ids are: none in stream_ids for the new stream's first
	// versions, both for the long stream's.
	session := cassandratest.Session(t, o)
	for i, pre := range pres {
		readAll(t, s, string(reqs[i].Stream)) // a read has the owner write the stream first
		var n int
		if err := session.Query(`SELECT COUNT(*) FROM stream_ids WHERE stream = ? AND bucket = 0`, string(reqs[i].Stream)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 3}[pre == 0]; n != want {
			t.Fatalf("%s: %d stream_ids rows, want %d", reqs[i].Stream, n, want)
		}
	}
	// After a restart (another instance takes the shards), retries are
	// still recognised, and partial ones refused: the new owner loads the
	// ids from stream_ids and from the chunks.
	s.Close()
	s2 := open(t, shardstore.Options{Cassandra: o})
	defer s2.Close()
	for i, pre := range pres {
		r4, err := s2.Append(ctx, reqs[i])
		if err != nil || !r4.Duplicate || r4.FirstVersion != int64(pre)+1 {
			t.Fatalf("%s: any retry after restart: %+v %v", reqs[i].Stream, r4, err)
		}
		part := log.AppendRequest{Stream: reqs[i].Stream, Expected: log.Any, Events: reqs[i].Events[1:]}
		if _, err := s2.Append(ctx, part); !errors.Is(err, log.ErrIdempotencyConflict) {
			t.Fatalf("%s: partial repeat after restart: %v, want idempotency conflict", reqs[i].Stream, err)
		}
	}
	// Chunk rows written before their ids column and before the
	// partition's static low_ids: a new owner reads the ids of the new
	// stream's first versions from the chunks' bodies. (The columns are
	// dropped once the new owner has taken the shards: its catch-up may
	// write chunks again.)
	s2.Close()
	s3 := open(t, shardstore.Options{Cassandra: o})
	defer s3.Close()
	var lasts []int64
	iter := session.Query(`SELECT last_version FROM stream_events WHERE stream = ? AND bucket = 0`, string(reqs[0].Stream)).Iter()
	for v := int64(0); iter.Scan(&v); {
		lasts = append(lasts, v)
	}
	if err := iter.Close(); err != nil || len(lasts) == 0 {
		t.Fatalf("chunks of %s: %d, %v", reqs[0].Stream, len(lasts), err)
	}
	for _, v := range lasts {
		if err := session.Query(`DELETE ids FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = ?`, string(reqs[0].Stream), v).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	if err := session.Query(`DELETE low_ids, low_ids_from FROM stream_events WHERE stream = ? AND bucket = 0`, string(reqs[0].Stream)).Exec(); err != nil {
		t.Fatal(err)
	}
	var withIDs int
	if err := session.Query(`SELECT COUNT(ids) FROM stream_events WHERE stream = ? AND bucket = 0`, string(reqs[0].Stream)).Scan(&withIDs); err != nil || withIDs != 0 {
		t.Fatalf("%s: %d chunks still list their ids (%v)", reqs[0].Stream, withIDs, err)
	}
	if r, err := s3.Append(ctx, reqs[0]); err != nil || !r.Duplicate || r.FirstVersion != 1 {
		t.Fatalf("%s: any retry, ids in the bodies only: %+v %v", reqs[0].Stream, r, err)
	}
	if _, err := s3.Append(ctx, log.AppendRequest{Stream: reqs[0].Stream, Expected: log.Any, Events: reqs[0].Events[1:]}); !errors.Is(err, log.ErrIdempotencyConflict) {
		t.Fatalf("%s: partial repeat, ids in the bodies only: %v, want idempotency conflict", reqs[0].Stream, err)
	}
	// Concurrent identical sends: written once.
	b := log.AppendRequest{Stream: "user-2", Expected: log.Any, Events: []log.ProposedEvent{ev(uuid.New(), "A", `1`)}}
	var wg sync.WaitGroup
	var dups atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := b // Validate compacts a request's JSON in place: one copy each
			req.Events = make([]log.ProposedEvent, len(b.Events))
			for i, e := range b.Events {
				e.Data = slices.Clone(e.Data)
				req.Events[i] = e
			}
			r, err := s3.Append(ctx, req)
			if err != nil {
				t.Error(err)
			}
			if r.Duplicate {
				dups.Add(1)
			}
		}()
	}
	wg.Wait()
	checkGapless(t, "user-2", readAll(t, s3, "user-2"), 1)
	if dups.Load() != 7 {
		t.Fatalf("%d of 8 concurrent sends were duplicates, want 7", dups.Load())
	}
	for _, pre := range pres {
		stream := fmt.Sprintf("user-%d", pre)
		checkGapless(t, stream, readAll(t, s3, stream), pre+3)
	}
}

// Two instances share the shards; each forwards to the other what it does
// not own. Concurrent exact appenders through both keep every stream
// gapless and every acknowledged event at its version.
func TestTwoInstancesExact(t *testing.T) {
	o := newKeyspace(t, 4)
	var peers sync.Map // address -> *shardstore.Store
	fwd := func(ctx context.Context, addr string, req log.AppendRequest) (log.AppendResult, error) {
		p, ok := peers.Load(addr)
		if !ok {
			return log.AppendResult{}, log.ErrUnavailable
		}
		return p.(*shardstore.Store).AppendLocal(ctx, req)
	}
	flush := func(ctx context.Context, addr string, stream log.StreamID) error {
		p, ok := peers.Load(addr)
		if !ok {
			return log.ErrUnavailable
		}
		return p.(*shardstore.Store).FlushLocal(ctx, stream)
	}
	a := open(t, shardstore.Options{Cassandra: o, Address: "a", Forward: fwd, FlushRemote: flush})
	peers.Store("a", a)
	defer a.Close()
	// The shards spread over both (rendezvous hashing of the instances'
	// random ids): a hands b its share. One time in eight the hash gives
	// one instance all four; then b rejoins under another id.
	var b *shardstore.Store
	for attempt := 0; b == nil; attempt++ {
		c := open(t, shardstore.Options{Cassandra: o, Address: "b", Forward: fwd, FlushRemote: flush})
		peers.Store("b", c)
		deadline := time.Now().Add(15 * time.Second)
		var since time.Time
		for time.Now().Before(deadline) {
			na, nb := len(a.Owned()), len(c.Owned())
			switch {
			case na+nb != 4:
				since = time.Time{}
			case since.IsZero():
				since = time.Now()
			}
			if na > 0 && nb > 0 && na+nb == 4 {
				b = c
				break
			}
			if !since.IsZero() && time.Since(since) > 3*time.Second {
				break // settled, but all on one side
			}
			time.Sleep(50 * time.Millisecond)
		}
		if b == nil {
			if attempt == 5 {
				t.Fatalf("owned: a %v b %v, want the 4 shards split", a.Owned(), c.Owned())
			}
			c.Close()
		}
	}
	defer b.Close()
	ctx := context.Background()
	const writers, per, nstreams = 16, 30, 4
	acked := make([]sync.Map, nstreams) // version -> id
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if w%2 == 1 {
				s = b
			}
			stream := fmt.Sprintf("acct-%d", w%nstreams)
			var cur int64
			for done := 0; done < per; {
				id := uuid.New()
				r, err := s.Append(ctx, log.AppendRequest{Stream: log.StreamID(stream), Expected: log.ExpectedVersion(cur), Events: []log.ProposedEvent{ev(id, "T", `{}`)}})
				var wev *log.WrongExpectedVersionError
				switch {
				case err == nil:
					if _, dup := acked[w%nstreams].LoadOrStore(r.FirstVersion, id); dup {
						t.Errorf("%s v%d acknowledged twice", stream, r.FirstVersion)
					}
					cur = r.LastVersion
					done++
				case errors.As(err, &wev):
					cur = wev.Current
				default:
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < nstreams; i++ {
		stream := fmt.Sprintf("acct-%d", i)
		evs := readAll(t, a, stream)
		checkGapless(t, stream, evs, writers/nstreams*per)
		for _, e := range evs {
			if id, ok := acked[i].Load(e.Version); !ok || id.(uuid.UUID) != e.ID {
				t.Fatalf("%s v%d: stored %s, acknowledged %v", stream, e.Version, e.ID, id)
			}
		}
	}
}

// A paused owner (no renewals, its commit held mid-way) loses its shards
// to another instance; when it resumes, its held commit is refused by the
// fence, nothing of it becomes visible, and the new owner's commits stand.
func TestFencedExOwner(t *testing.T) {
	o := newKeyspace(t, 1)
	var paused atomic.Bool
	hold := make(chan struct{})
	held := make(chan struct{}, 1)
	a := open(t, shardstore.Options{Cassandra: o, Paused: paused.Load, BeforeCommit: func(int) {
		if paused.Load() {
			held <- struct{}{}
			<-hold
		}
	}})
	defer a.Close()
	ctx := context.Background()
	if _, err := appendN(ctx, a, "job-1", log.NoStream, 2); err != nil {
		t.Fatal(err)
	}
	paused.Store(true)
	zombie := make(chan error, 1)
	go func() {
		_, err := appendN(ctx, a, "job-1", 2, 1)
		zombie <- err
	}()
	<-held // a's commit is in hand, not sent
	b := open(t, shardstore.Options{Cassandra: o})
	defer b.Close()
	deadline := time.Now().Add(20 * time.Second)
	for len(b.Owned()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("b never took the shard over")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r, err := appendN(ctx, b, "job-1", 2, 3)
	if err != nil || r.FirstVersion != 3 {
		t.Fatalf("new owner's append: %+v %v", r, err)
	}
	close(hold)
	if err := <-zombie; !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("the ex-owner's held commit: %v, want unavailable (fenced, nothing written)", err)
	}
	evs := readAll(t, b, "job-1")
	checkGapless(t, "job-1", evs, 5)
	for _, e := range evs[2:] {
		if e.Type != "Tested" {
			t.Fatal("unexpected event")
		}
	}
	if r.Events[0].ID != evs[2].ID {
		t.Fatalf("v3 is %s, the new owner's append wrote %s", evs[2].ID, r.Events[0].ID)
	}
}

// Many appends over many streams cross log segments and buckets (small
// caps); a new instance after a clean close continues every stream.
func TestSegmentsBucketsRestart(t *testing.T) {
	o := newKeyspace(t, 2)
	o.BucketMaxEvents = 7
	o.Limits.MaxEventsPerAppend = 5
	s := open(t, shardstore.Options{Cassandra: o})
	ctx := context.Background()
	const streams, rounds = 20, 12
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if _, err := appendN(ctx, s, fmt.Sprintf("s-%d", i), log.Any, 1+r%3); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	s2 := open(t, shardstore.Options{Cassandra: o})
	defer s2.Close()
	want := 0
	for r := 0; r < rounds; r++ {
		want += 1 + r%3
	}
	for i := 0; i < streams; i++ {
		stream := fmt.Sprintf("s-%d", i)
		if _, err := appendN(ctx, s2, stream, log.ExpectedVersion(want), 1); err != nil {
			t.Fatalf("%s: append after restart: %v", stream, err)
		}
		checkGapless(t, stream, readAll(t, s2, stream), want+1)
		info, err := s2.Info(ctx, log.StreamID(stream))
		if err != nil || info.Buckets < 3 {
			t.Fatalf("%s: info %+v %v, want several buckets", stream, info, err)
		}
	}
}

// An owner that stops (paused: no renewals, its filler holding an hour's
// delay) with acknowledged appends only in its tail: the stream
// partitions hold none of them. The new owner's catch-up writes them from
// the log: every acknowledged event is readable at its version, exactly
// once, and an `any` retry of one of them is recognised as a duplicate.
func TestLostOwnerUnwrittenTail(t *testing.T) {
	o := newKeyspace(t, 2)
	var paused atomic.Bool
	a := open(t, shardstore.Options{Cassandra: o, Paused: paused.Load, FillDelay: time.Hour})
	ctx := context.Background()
	const streams, per = 12, 3
	acked := map[string][]uuid.UUID{}
	var retry log.AppendRequest
	for i := 0; i < streams; i++ {
		stream := fmt.Sprintf("tail-%d", i)
		for j := 0; j < per; j++ {
			req := log.AppendRequest{Stream: log.StreamID(stream), Expected: log.Any,
				Events: []log.ProposedEvent{ev(uuid.New(), "Tested", fmt.Sprintf(`{"j":%d}`, j))}}
			if i == 0 && j == 1 {
				retry = req
				retry.Events = []log.ProposedEvent{ev(req.Events[0].ID, "Tested", `{"j":1}`)}
			}
			r, err := a.Append(ctx, req)
			if err != nil || r.FirstVersion != int64(j+1) {
				t.Fatalf("%s: %+v %v", stream, r, err)
			}
			acked[stream] = append(acked[stream], req.Events[0].ID)
		}
	}
	session, err := cassandra.Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	var rows int
	if err := session.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = ? AND bucket = 0`, "tail-0").Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("tail-0 has %d rows in its partition before the takeover (%v): the test needs them unwritten", rows, err)
	}
	paused.Store(true)
	b := open(t, shardstore.Options{Cassandra: o})
	defer b.Close()
	deadline := time.Now().Add(30 * time.Second)
	for len(b.Owned()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("b owns %v, want both shards", b.Owned())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < streams; i++ {
		stream := fmt.Sprintf("tail-%d", i)
		evs := readAll(t, b, stream)
		checkGapless(t, stream, evs, per)
		for j, e := range evs {
			if e.ID != acked[stream][j] {
				t.Fatalf("%s v%d is %s, acknowledged %s", stream, e.Version, e.ID, acked[stream][j])
			}
		}
	}
	r, err := b.Append(ctx, retry)
	if err != nil || !r.Duplicate || r.FirstVersion != 2 {
		t.Fatalf("retry through the new owner: %+v %v, want the duplicate of v2", r, err)
	}
	checkGapless(t, "tail-0", readAll(t, b, "tail-0"), per)
	paused.Store(false)
	a.Close()
}

// TestOpenChecksKeyspace: the shard store makes cassandra.CheckKeyspace's checks
// (schema version, paxos_variant) before it claims shards.
func TestOpenChecksKeyspace(t *testing.T) {
	o := newKeyspace(t, 2)
	sess := cassandratest.Session(t, o)
	if err := sess.Query(`INSERT INTO schema_migrations (version, name) VALUES (999, 'future')`).Exec(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, cassandra.ErrSchemaMismatch) {
		t.Fatalf("open on a newer schema: %v, want ErrSchemaMismatch", err)
	}
}

// TestCompressedRows: a 100-event append is stored compressed — its log
// record and its chunk begin with the zstd format byte (2) and are smaller
// than their events' JSON — and reads back whole from the stream, a
// reopened store (nothing cached) and the all feed.
func TestCompressedRows(t *testing.T) {
	o := newKeyspace(t, 2)
	s := open(t, shardstore.Options{Cassandra: o})
	ctx := context.Background()
	req := log.AppendRequest{Stream: "order-z", Expected: log.NoStream}
	jsonBytes := 0
	for i := range 100 {
		e := ev(uuid.New(), "ItemAdded", fmt.Sprintf(`{"order_id":"o-7","sku":"grinder-pro","quantity":%d,"unit_price":%d.5,"currency":"EUR"}`, i%5+1, 10+i))
		jsonBytes += len(e.Data)
		req.Events = append(req.Events, e)
	}
	if _, err := s.Append(ctx, req); err != nil {
		t.Fatal(err)
	}
	check := func(s *shardstore.Store) {
		t.Helper()
		got := readAll(t, s, "order-z")
		checkGapless(t, "order-z", got, 100)
		for i, e := range got {
			if e.ID != req.Events[i].ID || string(e.Data) != string(req.Events[i].Data) {
				t.Fatalf("event %d: %s %s, want %s %s", i+1, e.ID, e.Data, req.Events[i].ID, req.Events[i].Data)
			}
		}
	}
	check(s) // the read writes the stream's chunk first
	session := cassandratest.Session(t, o)
	var chunk []byte
	if err := session.Query(`SELECT record FROM stream_events WHERE stream = ? AND bucket = 0`, "order-z").Scan(&chunk); err != nil {
		t.Fatal(err)
	}
	var record []byte
	if err := session.Query(`SELECT record FROM shard_log WHERE shard = ? AND segment = 0 AND seq = 1`, partition.ShardOf("order-z", o.Shards)).Scan(&record); err != nil {
		t.Fatal(err)
	}
	// Formats (internal/record): chunks zstd (2), log records S2 (3).
	for name, f := range map[string]struct {
		b      []byte
		format byte
	}{"chunk": {chunk, 2}, "log record": {record, 3}} {
		if b := f.b; len(b) == 0 || b[0] != f.format || len(b) >= jsonBytes/2 {
			t.Errorf("%s: %d bytes, format %d; want format %d and under half the %d bytes of JSON", name, len(b), b[0], f.format, jsonBytes)
		}
	}
	s.Close()
	s = open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	check(s)
	page, err := s.ReadFeed(ctx, log.FeedRead{Feed: log.AllFeed, Limit: 1000})
	if err != nil || len(page.Events) != 100 {
		t.Fatalf("all feed: %d events, %v; want 100", len(page.Events), err)
	}
	for i, e := range page.Events {
		if e.ID != req.Events[i].ID || string(e.Data) != string(req.Events[i].Data) {
			t.Fatalf("feed event %d: %s, want %s", i, e.ID, req.Events[i].ID)
		}
	}
}

// TestLargeAppendsIndexed: appends of the most events an append may hold
// (1,000, UUIDv7 client ids, as the clients send) are written to their
// stream and their id index: the index statements of several such chunks
// once rode in the chunks' multi-partition batch, which Cassandra refused
// as too large, and the fill retried it forever.
func TestLargeAppendsIndexed(t *testing.T) {
	o := newKeyspace(t, 2)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	// Bounded: a fill that cannot be written makes the read below wait.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const appends, per = 4, 1000
	var (
		wg   sync.WaitGroup
		errs = make(chan error, appends)
		last uuid.UUID
	)
	reqs := make([]log.AppendRequest, appends)
	for i := range reqs {
		reqs[i] = log.AppendRequest{Stream: "bulk-1", Expected: log.Any}
		for j := range per {
			id := uuid.Must(uuid.NewV7())
			reqs[i].Events = append(reqs[i].Events, ev(id, "Loaded", fmt.Sprintf(`{"i":%d,"j":%d,"note":"a row of a large import"}`, i, j)))
			last = id
		}
	}
	for i := range reqs { // at once: they share commits, and so fills
		wg.Go(func() {
			if _, err := s.Append(ctx, reqs[i]); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var got []log.RecordedEvent
	err := s.ReadStream(ctx, log.ReadRange{Stream: "bulk-1"}, func(e *log.RecordedEvent) error {
		got = append(got, log.RecordedEvent{ID: e.ID, Version: e.Version, Time: e.Time})
		return nil
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	checkGapless(t, "bulk-1", got, appends*per)
	e, err := s.EventByID(ctx, last, nil)
	if err != nil || e.Stream != "bulk-1" || e.ID != last {
		t.Fatalf("EventByID of the last appended id: %+v %v", e, err)
	}
	if !strings.Contains(string(e.Data), `"j":999`) {
		t.Fatalf("EventByID: data %s, want the last event of its append", e.Data)
	}
}

// TestLargeAppendsIndexedAcrossMinutes: large appends whose ids carry two
// minutes, so that their fill's id index statements (one per commit and
// partition, up to 500 ids each) go to two partitions. Those statements
// were counted as a row each when their batches were cut, and a batch of
// several of them was refused by Cassandra ("Batch too large": more than
// 50 KiB over several partitions); the fill retried it for ever, and the
// shard's appends waited until they were answered 503 (seen building
// bench replay's 10,000 streams).
func TestLargeAppendsIndexedAcrossMinutes(t *testing.T) {
	o := newKeyspace(t, 2)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	// Bounded: a fill that cannot be written makes the read below wait.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A UUIDv7 id carrying the time ago before now.
	idAt := func(ago time.Duration) uuid.UUID {
		id := uuid.Must(uuid.NewV7())
		ms := uint64(time.Now().Add(-ago).UnixMilli())
		for i := range 6 {
			id[i] = byte(ms >> (40 - 8*i))
		}
		return id
	}
	const appends, per = 8, 500
	var (
		wg   sync.WaitGroup
		errs = make(chan error, appends)
		ids  []uuid.UUID
	)
	reqs := make([]log.AppendRequest, appends)
	for i := range reqs {
		reqs[i] = log.AppendRequest{Stream: log.StreamID(fmt.Sprintf("wide-%d", i)), Expected: log.Any}
		for j := range per {
			id := idAt(time.Duration(1+j%2) * time.Minute)
			reqs[i].Events = append(reqs[i].Events, ev(id, "Loaded", fmt.Sprintf(`{"i":%d,"j":%d}`, i, j)))
			ids = append(ids, id)
		}
	}
	for i := range reqs { // at once: they share commits, and so fills
		wg.Go(func() {
			if _, err := s.Append(ctx, reqs[i]); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range reqs {
		n := 0
		err := s.ReadStream(ctx, log.ReadRange{Stream: reqs[i].Stream}, func(*log.RecordedEvent) error { n++; return nil })
		if err != nil || n != per {
			t.Fatalf("read %s: %d events, %v", reqs[i].Stream, n, err)
		}
	}
	for _, id := range []uuid.UUID{ids[0], ids[1], ids[len(ids)-1]} {
		if e, err := s.EventByID(ctx, id, nil); err != nil || e.ID != id {
			t.Fatalf("EventByID(%s): %+v %v", id, e.ID, err)
		}
	}
}

// TestEventIndexOldRows: id index rows written by servers before
// 0008_event_id_commits, in event_index, still find their event: a row
// naming the commit's log row (seq), and one from before 0003 naming the
// stream and version. The keyspace is one upgraded from before 0008 (its
// layout row without created_version): in one created at 0008 or later,
// the store does not read event_index.
func TestEventIndexOldRows(t *testing.T) {
	o := newKeyspace(t, 2)
	session := cassandratest.Session(t, o)
	if err := session.Query(`DELETE created_version FROM keyspace_config WHERE id = 0`).Exec(); err != nil {
		t.Fatal(err)
	}
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	evs := []log.ProposedEvent{ev(uuid.Must(uuid.NewV7()), "A", `1`), ev(uuid.Must(uuid.NewV7()), "B", `2`)}
	if _, err := s.Append(ctx, log.AppendRequest{Stream: "old-1", Expected: log.Any, Events: evs}); err != nil {
		t.Fatal(err)
	}
	readAll(t, s, "old-1") // the index rows are written with the stream
	id := evs[1].ID
	if e, err := s.EventByID(ctx, id, nil); err != nil || e.Stream != "old-1" || e.Version != 2 {
		t.Fatalf("EventByID: %+v %v", e, err)
	}
	m, _ := catalog.Minute(id, time.Now())
	shard := partition.ShardOf("old-1", 2)
	var seq int64
	if err := session.Query(`SELECT seq FROM event_id_commits WHERE shard = ? AND minute = ? AND slot IN (0, 1, 2, 3, 4, 5, 6, 7) AND id = ?`, shard, m, [16]byte(id)).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	for sh := range 2 {
		for slot := range catalog.Slots {
			if err := session.Query(`DELETE FROM event_id_commits WHERE shard = ? AND minute = ? AND slot = ? AND id = ?`, sh, m, slot, [16]byte(id)).Exec(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.EventByID(ctx, id, nil); !errors.Is(err, log.ErrEventNotFound) {
		t.Fatalf("EventByID with its row deleted: %v, want not found", err)
	}
	if err := session.Query(`INSERT INTO event_index (shard, minute, slot, id, seq) VALUES (?, ?, 5, ?, ?)`, shard, m, [16]byte(id), seq).Exec(); err != nil {
		t.Fatal(err)
	}
	if e, err := s.EventByID(ctx, id, nil); err != nil || e.Stream != "old-1" || e.Version != 2 || string(e.Data) != `2` {
		t.Fatalf("EventByID from a row of event_index naming the log row: %+v %v", e, err)
	}
	if err := session.Query(`DELETE FROM event_index WHERE shard = ? AND minute = ? AND slot = 5 AND id = ?`, shard, m, [16]byte(id)).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := session.Query(`INSERT INTO event_index (shard, minute, slot, id, stream, version) VALUES (0, ?, 3, ?, 'old-1', 2)`, m, [16]byte(id)).Exec(); err != nil {
		t.Fatal(err)
	}
	if e, err := s.EventByID(ctx, id, nil); err != nil || e.Stream != "old-1" || e.Version != 2 || string(e.Data) != `2` {
		t.Fatalf("EventByID from a row of event_index before 0003: %+v %v", e, err)
	}
}
