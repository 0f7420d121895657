package sequencer

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// The tests below run in a synctest bubble, whose clock moves only when
// every goroutine in it is blocked: synctest.Wait returns with no time
// passed. A call waiting on a paused owner must have moved on to the newer
// owner by then, woken by its recording (ownerOf). A wait on a poll, as
// forwardRemote's and flushRemote's 100 ms ticker and untilOwner's 50 ms
// sleep were, is still waiting there. The Sequencer has a real session
// (made outside the bubble) but these calls send nothing to Cassandra:
// the owners are recorded by hand, and the peers are functions.

// notifyPeer stands for the instances at the addresses: "paused" takes a
// request and answers nothing until the sender gives up (SIGSTOP); any
// other answers at once. sent gets each address asked.
func notifyPeer(sent chan<- string) (func(context.Context, string, log.AppendRequest) (log.AppendResult, error), func(context.Context, string, log.StreamID) error) {
	ask := func(ctx context.Context, addr string) error {
		sent <- addr
		if addr != "paused" {
			return nil
		}
		<-ctx.Done()
		return fmt.Errorf("ask %s: %w: %v", addr, log.ErrOutcomeUnknown, ctx.Err())
	}
	forward := func(ctx context.Context, addr string, req log.AppendRequest) (log.AppendResult, error) {
		if err := ask(ctx, addr); err != nil {
			return log.AppendResult{}, err
		}
		return log.AppendResult{FirstVersion: 1, LastVersion: int64(len(req.Events))}, nil
	}
	flush := func(ctx context.Context, addr string, _ log.StreamID) error { return ask(ctx, addr) }
	return forward, flush
}

// notifyRun runs body in a bubble with a Sequencer (nothing owned, no
// ownership loop) whose peers are notifyPeer's, and the stream body uses.
func notifyRun(t *testing.T, body func(t *testing.T, s *Sequencer, stream log.StreamID, sent <-chan string)) {
	o := handoverKeyspace(t, 2)
	cfg := testConfig(t, o, "i-"+uuid.NewString())
	cfg.NoBlocks = true // its writer is a goroutine that outlives the bubble
	synctest.Test(t, func(t *testing.T) {
		sent := make(chan string, 8)
		c := cfg
		c.Forward, c.FlushRemote = notifyPeer(sent)
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		body(t, s, "owner-notify", sent)
	})
}

// notifyCheck records a newer owner ("next", epoch 2) of stream's shard
// once the call running in the background waits, and checks the call
// then ends, at once, with next's answer (done).
func notifyCheck(t *testing.T, s *Sequencer, stream log.StreamID, sent <-chan string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	synctest.Wait() // the call waits: on the paused owner, or for an owner
	s.setOwner(owner{Shard: partition.ShardOf(string(stream), s.cfg.Shards), Owner: "next", Address: "next", Epoch: 2, exists: true})
	synctest.Wait() // no time passed
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("got %v, want next's answer", err)
		}
	default:
		cancel()
		<-done
		t.Fatal("still waiting once the newer owner was recorded; want the call to ask it at once")
	}
	var asked []string
	for len(sent) > 0 {
		asked = append(asked, <-sent)
	}
	if len(asked) == 0 || asked[len(asked)-1] != "next" {
		t.Fatalf("asked %v; want next last", asked)
	}
}

// notifyCall records first (name and address; "": released) as the
// owner of stream's shard at epoch 1, runs call in the background and
// checks it with notifyCheck.
func notifyCall(t *testing.T, s *Sequencer, stream log.StreamID, sent <-chan string, first string, call func(ctx context.Context) error) {
	t.Helper()
	id := partition.ShardOf(string(stream), s.cfg.Shards)
	s.setOwner(owner{Shard: id, Owner: first, Address: first, Epoch: 1, exists: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	notifyCheck(t, s, stream, sent, cancel, done)
}

// notifyAppend is a call appending one event to stream.
func notifyAppend(s *Sequencer, stream log.StreamID) func(ctx context.Context) error {
	req := log.AppendRequest{Stream: stream, Expected: log.Any, Events: []log.ProposedEvent{{ID: uuid.New(), Type: "Tested", Data: []byte(`{}`)}}}
	return func(ctx context.Context) error {
		_, err := s.Append(ctx, req)
		return err
	}
}

// TestForwardAsksTheNewOwnerAtOnce: an append forwarded to a paused owner
// is sent to the newer owner once this instance records it, with no poll
// in between (forwardRemote, then untilOwner).
func TestForwardAsksTheNewOwnerAtOnce(t *testing.T) {
	notifyRun(t, func(t *testing.T, s *Sequencer, stream log.StreamID, sent <-chan string) {
		notifyCall(t, s, stream, sent, "paused", notifyAppend(s, stream))
	})
}

// TestFlushAsksTheNewOwnerAtOnce: a read's flush asked of a paused owner
// is asked of the newer owner once this instance records it
// (flushRemote, then untilOwner).
func TestFlushAsksTheNewOwnerAtOnce(t *testing.T) {
	notifyRun(t, func(t *testing.T, s *Sequencer, stream log.StreamID, sent <-chan string) {
		notifyCall(t, s, stream, sent, "paused", func(ctx context.Context) error { return s.Flush(ctx, stream) })
	})
}

// TestOwnerWaitWokenByANewOwner: an append for a shard without an owner
// (released, its next owner not yet known) is sent to the owner this
// instance records next, without waiting out untilOwner's sleep.
func TestOwnerWaitWokenByANewOwner(t *testing.T) {
	notifyRun(t, func(t *testing.T, s *Sequencer, stream log.StreamID, sent <-chan string) {
		notifyCall(t, s, stream, sent, "", notifyAppend(s, stream)) // released
	})
}

// TestForwardToUnreachableOwnerWaits: an append forwarded to an owner
// whose listener refuses the connection (stopping: it has closed its
// listener and hands its shards over at its next tick) was answered 503
// at once; nothing was sent, so it waits for the owner recorded next and
// is committed there.
func TestForwardToUnreachableOwnerWaits(t *testing.T) {
	notifyRun(t, func(t *testing.T, s *Sequencer, stream log.StreamID, sent <-chan string) {
		reached := s.cfg.Forward
		s.cfg.Forward = func(ctx context.Context, addr string, req log.AppendRequest) (log.AppendResult, error) {
			if addr == "stopping" {
				return log.AppendResult{}, fmt.Errorf("forward to %s: %w: connection refused", addr, log.ErrOwnerUnreachable)
			}
			return reached(ctx, addr, req)
		}
		notifyCall(t, s, stream, sent, "stopping", notifyAppend(s, stream))
	})
}
