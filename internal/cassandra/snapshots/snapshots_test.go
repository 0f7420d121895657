package snapshots_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/snapshots"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/snapshot"
)

// TestPutAnswerLost: a snapshot put whose answer is lost (the row
// written, Cassandra's answer never arrived) is log.ErrOutcomeUnknown: it
// was log.ErrUnavailable, 503 "nothing was written", of a snapshot that
// was stored and is served.
func TestPutAnswerLost(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	session, _, d := cassandratest.FaultySession(t, o)
	ctx := context.Background()
	codec, err := snapshot.NewCodec(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshots.New(session, codec, 1<<20, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	head := func(context.Context) (int64, error) { return 10, nil }
	// A put first: the statement is prepared, Cassandra's clock measured.
	if _, err := s.Put(ctx, "snap-1", 1, json.RawMessage(`{"n":1}`), head); err != nil {
		t.Fatal(err)
	}

	lose := func(context.Context) (int64, error) {
		d.DropResponses.Store(true) // from the put's write on
		return 10, nil
	}
	_, err = s.Put(ctx, "snap-1", 2, json.RawMessage(`{"n":2}`), lose)
	d.DropResponses.Store(false)
	if !errors.Is(err, log.ErrOutcomeUnknown) || errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("put whose answer was lost: %v, want outcome unknown", err)
	}

	// It was written.
	other := snapshots.New(cassandratest.Session(t, o), codec, 1<<20, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	snap, err := other.Latest(ctx, "snap-1", 0)
	if err != nil || snap.Version != 2 {
		t.Fatalf("latest after the lost answer: %+v, %v; want version 2", snap, err)
	}
}
