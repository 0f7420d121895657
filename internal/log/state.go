package log

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// State is an aggregate load: the latest snapshot at or below Version and
// the range of events after it up to Version (Tail), which the caller reads
// with ReadStream so the events stream rather than pile up in memory.
type State struct {
	Stream   StreamID
	Version  int64
	Snapshot *Snapshot // nil when there is none
	Tail     ReadRange // empty (From > To) when the snapshot is at Version
}

// TailEmpty reports whether no events follow the snapshot.
func (s *State) TailEmpty() bool { return s.Tail.From > s.Tail.To }

// LoadState prepares the load of stream as of version at (0: the head).
// It returns ErrStreamNotFound for a stream without events and
// *ValidationError when at is negative or above the head.
func LoadState(ctx context.Context, s Store, stream StreamID, at int64) (State, error) {
	if at != 0 {
		info, err := s.Info(ctx, stream)
		if err != nil {
			return State{}, err
		}
		if at < 0 || at > info.Version {
			return State{}, invalid(CodeInvalidVersion, "at=%d is outside 1..%d", at, info.Version)
		}
		return loadState(ctx, s, stream, at)
	}
	// The head: its version and the newest snapshot are read at once (a
	// load is then one round of reads shorter). A snapshot put after the
	// head was read may be past it: then the snapshot at or below the
	// head is read after all.
	var (
		snap Snapshot
		sErr error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		snap, sErr = s.LatestSnapshot(ctx, stream, 0)
	}()
	info, err := s.Info(ctx, stream)
	<-done
	if err != nil {
		return State{}, err
	}
	switch {
	case sErr == nil && snap.Version <= info.Version:
		return State{Stream: stream, Version: info.Version, Snapshot: &snap,
			Tail: ReadRange{Stream: stream, From: snap.Version + 1, To: info.Version}}, nil
	case errors.Is(sErr, ErrSnapshotNotFound):
		return State{Stream: stream, Version: info.Version, Tail: ReadRange{Stream: stream, From: 1, To: info.Version}}, nil
	}
	return loadState(ctx, s, stream, info.Version)
}

// LoadStateAt prepares the load of stream as it was at moment t: at the
// last version committed at or before t (Store.VersionAt), from the latest
// snapshot at or below that version. A moment at or after the last commit
// gives the head. A stream with no event committed by t did not exist yet:
// ErrStreamNotYet, which is an ErrStreamNotFound, what LoadState answered at
// that moment.
func LoadStateAt(ctx context.Context, s Store, stream StreamID, t time.Time) (State, error) {
	v, err := s.VersionAt(ctx, stream, t)
	if err != nil {
		return State{}, err
	}
	if v == 0 {
		return State{}, fmt.Errorf("stream %s at %s: %w", stream, t.Format(time.RFC3339Nano), ErrStreamNotYet)
	}
	return loadState(ctx, s, stream, v)
}

// loadState finds the snapshot for version at, which the stream has.
func loadState(ctx context.Context, s Store, stream StreamID, at int64) (State, error) {
	st := State{Stream: stream, Version: at, Tail: ReadRange{Stream: stream, From: 1, To: at}}
	snap, err := s.LatestSnapshot(ctx, stream, at)
	switch {
	case err == nil:
		st.Snapshot = &snap
		st.Tail.From = snap.Version + 1
	case !errors.Is(err, ErrSnapshotNotFound):
		return State{}, err
	}
	return st, nil
}
