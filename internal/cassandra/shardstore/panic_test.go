package shardstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// snapshotReadPanics panics where ReadState reads the newest snapshot, on
// a goroutine of its own.
func snapshotReadPanics() { panic("snapshot read bug") }

// TestReadStatePanicIsTheCallers: a panic on the goroutine of ReadState
// that reads the newest snapshot is raised again on the caller's, with
// that goroutine's stack. It ended the process (the test binary crashed):
// a state load's panic there was no 500 but every client's end.
func TestReadStatePanicIsTheCallers(t *testing.T) {
	o := newKeyspace(t, 1)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx := context.Background()
	const stream = "agg-panic"
	if _, err := appendN(ctx, s, stream, log.NoStream, 2); err != nil {
		t.Fatal(err)
	}
	shardstore.SetStateHooks(s, nil, snapshotReadPanics)
	defer shardstore.SetStateHooks(s, nil, nil)
	var got any
	func() {
		defer func() { got = recover() }()
		_ = s.ReadState(ctx, stream, func(log.State) error { return nil }, func(*log.RecordedEvent) error { return nil })
	}()
	p, ok := got.(*fanout.Panic)
	if !ok || p.Value != "snapshot read bug" || !strings.Contains(string(p.Stack), "shardstore_test.snapshotReadPanics(") {
		t.Fatalf("ReadState raised %v; want the snapshot read's panic with its stack", got)
	}
}
