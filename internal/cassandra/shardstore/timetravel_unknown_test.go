package shardstore_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// slowStop delays the commit goroutine's "shard stopped" log line, which
// run() writes after close(sh.decided) and before sh.stop(err).
type slowStop struct {
	slog.Handler
	armed   *atomic.Bool
	stopped chan struct{}
}

func (h slowStop) Handle(ctx context.Context, r slog.Record) error {
	if h.armed.Load() && r.Message == "shard stopped" {
		select {
		case h.stopped <- struct{}{}:
		default:
		}
		time.Sleep(1500 * time.Millisecond)
	}
	return h.Handler.Handle(ctx, r)
}
func (h slowStop) WithAttrs(a []slog.Attr) slog.Handler {
	return slowStop{h.Handler.WithAttrs(a), h.armed, h.stopped}
}
func (h slowStop) WithGroup(n string) slog.Handler {
	return slowStop{h.Handler.WithGroup(n), h.armed, h.stopped}
}

// TestTimeTravelUnknownOutcome: a batch whose outcome stays unknown (it
// applied; the answers were lost) woke the readers waiting for it before
// the shard stopped: a read as of a moment after its time answered
// without it, and once the next owner settled it the answer changed. The
// shard now stops first, so the waiting read goes to the next owner. The
// "shard stopped" log line is slowed to widen the window (from a helper's
// review).
func TestTimeTravelUnknownOutcome(t *testing.T) {
	o := newKeyspace(t, 1)
	var armed, hold atomic.Bool
	stopped := make(chan struct{}, 1)
	o.Logger = slog.New(slowStop{slog.Default().Handler(), &armed, stopped})
	held := make(chan struct{}, 1)
	s := open(t, shardstore.Options{Cassandra: o, LeaseTTL: time.Second,
		BeforeCommit: func(int) {
			if hold.Load() {
				hold.Store(false)
				held <- struct{}{}
				time.Sleep(400 * time.Millisecond) // the commit's time is taken
			}
		},
		LogFault: func(op string, shard int, err error) error {
			if armed.Load() && err == nil && (op == "commit" || op == "settle") {
				return &gocql.RequestErrUnavailable{Consistency: gocql.Serial, Required: 2, Alive: 1}
			}
			return err
		}})
	defer s.Close()
	ctx := context.Background()
	const stream = "rev2-unknown-1"
	if _, err := appendN(ctx, s, stream, log.NoStream, 1); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	hold.Store(true)
	appended := make(chan error, 1)
	go func() { _, err := appendN(ctx, s, stream, 1, 1); appended <- err }()
	<-held
	time.Sleep(200 * time.Millisecond)
	moment := time.Now().Add(-50 * time.Millisecond) // after the batch's time
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	type answer struct {
		v   int64
		err error
	}
	got := make(chan answer, 1)
	go func() { v, err := s.VersionAt(rctx, stream, moment); got <- answer{v, err} }()
	<-stopped
	before := <-got
	armed.Store(false)
	if err := <-appended; !errors.Is(err, log.ErrOutcomeUnknown) {
		t.Fatalf("append: %v, want outcome unknown", err)
	}
	t.Logf("as of %s, while the batch was unsettled: %d %v", moment.Format(time.RFC3339Nano), before.v, before.err)
	time.Sleep(2 * time.Second) // past the slowed log line: the shard has stopped
	var after int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		v, err := s.VersionAt(rctx, stream, moment)
		if err == nil {
			after = v
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	evs := readAll(t, s, stream)
	t.Logf("after: %d; events %d", after, len(evs))
	for _, e := range evs {
		t.Logf("v%d at %s", e.Version, e.Time.Format(time.RFC3339Nano))
	}
	if before.err == nil && before.v != after {
		t.Fatalf("VersionAt(%s): %d while the outcome was unknown, %d once settled: an answer as of a past moment changed", moment.Format(time.RFC3339Nano), before.v, after)
	}
}
