package shardstore

import (
	"context"
	"errors"

	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// errSnapshotAhead: the newest snapshot, read before the head, is past it
// (a snapshot put in between at a version filled in between).
var errSnapshotAhead = errors.New("snapshot past the head read")

// stateHooks is a test seam (export_test.go): it orders ReadState's first
// round, the snapshot read after the bucket index and what the test does
// in between, so the restart a late snapshot causes can be made to happen.
type stateHooks struct {
	afterBuckets, beforeSnapshot func()
}

// ReadState implements log.StateReader in two rounds of reads, where Info
// and then ReadStream take five (head index row, last chunk; bucket index,
// the chunk holding the head, the chunks): the bucket index and the newest
// snapshot at once, then the head (the newest bucket's last chunk) and the
// chunks after the snapshot at once, cut at the head. A state load is how
// an aggregate is rebuilt before each command, so its latency is the
// product's.
func (s *Store) ReadState(ctx context.Context, stream log.StreamID, begin func(log.State) error, fn func(*log.RecordedEvent) error) error {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return err
	}
	// Every acknowledged append is in the partitions before they are read.
	if err := s.seq.Flush(ctx, stream); err != nil {
		return err
	}
	// The reads' goroutines' panics are raised on the caller's (Wait,
	// Get): on theirs they ended the process.
	var (
		wg   fanout.Group
		snap log.Snapshot
		sErr error
	)
	hooks := s.stateHooks
	wg.Go(func() {
		if hooks != nil {
			hooks.beforeSnapshot()
		}
		snap, sErr = s.LatestSnapshot(ctx, stream, 0)
	})
	bs, err := s.streams.Buckets(ctx, stream)
	if hooks != nil {
		hooks.afterBuckets()
	}
	wg.Wait()
	switch {
	case err != nil:
		return err
	case len(bs) == 0:
		return log.ErrStreamNotFound
	case sErr != nil && !errors.Is(sErr, log.ErrSnapshotNotFound):
		return sErr
	}
	var base *log.Snapshot
	if sErr == nil {
		base = &snap
	}

	type headRead struct {
		h   streams.Head
		err error
	}
	heads := fanout.Start(func() headRead {
		h, err := s.streams.HeadIn(ctx, stream, bs)
		return headRead{h, err}
	})
	// Collected on every path (a read that failed before start needs no
	// head), so that its panic is raised.
	defer heads.Get()
	var (
		st      log.State
		started bool
	)
	// start waits for the head and begins the state at it: called before
	// the first event past the snapshot, or once the read found none.
	start := func() error {
		hr := heads.Get()
		switch {
		case hr.err != nil:
			return hr.err
		case hr.h.Version == 0:
			return log.ErrStreamNotFound
		case base != nil && base.Version > hr.h.Version:
			st.Version = hr.h.Version
			return errSnapshotAhead
		}
		started = true
		st = log.State{Stream: stream, Version: hr.h.Version, Snapshot: base, Tail: log.ReadRange{Stream: stream, From: 1, To: hr.h.Version}}
		if base != nil {
			st.Tail.From = base.Version + 1
		}
		return begin(st)
	}
	next := int64(1)
	if base != nil {
		next = base.Version + 1
	}
	each := func(e *log.RecordedEvent) error {
		if !started {
			if err := start(); err != nil {
				return err
			}
		}
		if e.Version > st.Version {
			return log.ErrStop
		}
		next = e.Version + 1
		return fn(e)
	}
	// The read runs to the stream's end (no upper bound: no round to find
	// the chunk holding the head) and stops past the head.
	err = s.streams.ReadIn(ctx, log.ReadRange{Stream: stream, From: next}, bs, each)
	if err == nil && !started {
		err = start()
	}
	switch {
	case errors.Is(err, errSnapshotAhead):
		// Rare: the state at the head read, from the snapshot at or
		// below it, one round at a time.
		at, err := log.LoadState(ctx, s, stream, st.Version)
		if err != nil {
			return err
		}
		return log.ReadTail(ctx, s, at, begin, fn)
	case err != nil:
		return err
	case next <= st.Version:
		// The chunks were read before a fill the head read saw: the rest.
		return s.streams.ReadIn(ctx, log.ReadRange{Stream: stream, From: next, To: st.Version}, bs, fn)
	}
	return nil
}
