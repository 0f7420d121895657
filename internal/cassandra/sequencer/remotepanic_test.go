package sequencer

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

func forwardPanics(context.Context, string, log.AppendRequest) (log.AppendResult, error) {
	panic("forward bug")
}

func flushPanics(context.Context, string, log.StreamID) error { panic("flush bug") }

// TestRemoteCallPanicIsTheCallers: a panic of the call asking a shard's
// owner to commit or flush (forwardRemote, flushRemote: on a goroutine of
// its own, so that the caller can turn to a newer owner meanwhile) is
// raised on the caller's goroutine with its stack, where the HTTP layer
// answers 500. It ended the process (the test binary crashed).
func TestRemoteCallPanicIsTheCallers(t *testing.T) {
	o := handoverKeyspace(t, 2)
	cfg := testConfig(t, o, "i-"+uuid.NewString())
	cfg.NoBlocks = true
	cfg.Forward, cfg.FlushRemote = forwardPanics, flushPanics
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const stream = "remote-panic"
	s.setOwner(owner{Shard: partition.ShardOf(stream, s.cfg.Shards), Owner: "other", Address: "other", Epoch: 1, exists: true})
	ctx := context.Background()
	for _, c := range []struct {
		name, value, frame string
		call               func()
	}{
		{"Flush", "flush bug", "sequencer.flushPanics(", func() { _ = s.Flush(ctx, stream) }},
		{"Forward", "forward bug", "sequencer.forwardPanics(", func() {
			_, _ = s.Append(ctx, log.AppendRequest{Stream: stream, Expected: log.Any,
				Events: []log.ProposedEvent{{ID: uuid.New(), Type: "Tested", Data: []byte(`{}`)}}})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got any
			func() {
				defer func() { got = recover() }()
				c.call()
			}()
			p, ok := got.(*fanout.Panic)
			if !ok || p.Value != c.value || !strings.Contains(string(p.Stack), c.frame) {
				t.Fatalf("raised %v; want the remote call's panic with its stack", got)
			}
		})
	}
}
