package shardstore_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestCorruptRowFailsOnlyItsStream: an append decided in the same commit
// group as an append to another stream whose row fails its check (read
// while the owner loads the streams' heads and ids) is not refused for
// that row: it is committed, and only the appends to the corrupt stream
// get its *log.CorruptError. The whole group used to get the first
// load's error, so an append to a sound stream was refused with
// data_corrupt naming another stream (one its key may not even read:
// through HTTP the detail names the row's stream).
func TestCorruptRowFailsOnlyItsStream(t *testing.T) {
	o := newKeyspace(t, 1)
	ctx := context.Background()
	s1 := open(t, shardstore.Options{Cassandra: o})
	const secret = "secret-1"
	if _, err := s1.Append(ctx, log.AppendRequest{Stream: secret, Expected: log.Any, Events: []log.ProposedEvent{ev(uuid.New(), "A", `1`)}}); err != nil {
		t.Fatal(err)
	}
	readAll(t, s1, secret) // its chunk row is written
	s1.Close()

	// The chunk row lists its ids in a column that fails its check (an
	// unknown format), and the partition has no static low ids (a row
	// written before them): a new owner reads the row's ids when it loads
	// the stream's head.
	session := cassandratest.Session(t, o)
	if err := session.Query(`UPDATE stream_events SET ids = ? WHERE stream = ? AND bucket = 0 AND last_version = 1`, []byte{0xee, 0x01}, secret).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := session.Query(`DELETE low_ids, low_ids_from FROM stream_events WHERE stream = ? AND bucket = 0`, secret).Exec(); err != nil {
		t.Fatal(err)
	}

	// A new owner whose first commit is held, so that the next two
	// appends queue and are decided together.
	var armed atomic.Bool
	held, hold := make(chan struct{}, 1), make(chan struct{})
	s2 := open(t, shardstore.Options{Cassandra: o, BeforeCommit: func(int) {
		if armed.CompareAndSwap(true, false) {
			held <- struct{}{}
			<-hold
		}
	}})
	defer s2.Close()
	armed.Store(true)
	warm := make(chan error, 1)
	go func() {
		_, err := s2.Append(ctx, log.AppendRequest{Stream: "warm-1", Expected: log.Any, Events: []log.ProposedEvent{ev(uuid.New(), "A", `1`)}})
		warm <- err
	}()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the first commit was never held")
	}
	type answer struct {
		res log.AppendResult
		err error
	}
	appendTo := func(stream string) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			r, err := s2.Append(ctx, log.AppendRequest{Stream: log.StreamID(stream), Expected: log.Any, Events: []log.ProposedEvent{ev(uuid.New(), "B", `2`)}})
			ch <- answer{r, err}
		}()
		return ch
	}
	bad, good := appendTo(secret), appendTo("pub-1")
	time.Sleep(300 * time.Millisecond) // both queued behind the held commit
	close(hold)
	if err := <-warm; err != nil {
		t.Fatalf("held append: %v", err)
	}
	b, g := <-bad, <-good
	var ce *log.CorruptError
	if !errors.As(b.err, &ce) || ce.Stream != secret {
		t.Fatalf("append to %s: %+v %v, want its corrupt row", secret, b.res, b.err)
	}
	if g.err != nil {
		leak := ""
		if strings.Contains(g.err.Error(), secret) {
			leak = " (naming " + secret + ")"
		}
		t.Fatalf("append to pub-1, decided with the append to %s: %v%s, want it committed", secret, g.err, leak)
	}
	if g.res.FirstVersion != 1 || len(readAll(t, s2, "pub-1")) != 1 {
		t.Fatalf("pub-1: %+v", g.res)
	}
}
