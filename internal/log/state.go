package log

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventlog/eventlog/internal/fanout"
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
		if err := atInside(at, info.Version); err != nil {
			return State{}, err
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
		g    fanout.Group // the snapshot read's panic is raised by Wait, here
	)
	g.Go(func() { snap, sErr = s.LatestSnapshot(ctx, stream, 0) })
	info, err := s.Info(ctx, stream)
	g.Wait()
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
		return State{}, notYetAt(stream, t)
	}
	return loadState(ctx, s, stream, v)
}

// CheckState refuses the load of stream as of version at (LoadState, or
// ReadState) or, when t is not zero, as it was at moment t (LoadStateAt)
// as those would, reading only its head (HeadVersion) or the version at
// t (VersionAt), no snapshot and no event: for a HEAD of the load.
func CheckState(ctx context.Context, s Store, stream StreamID, at int64, t time.Time) error {
	if !t.IsZero() {
		v, err := s.VersionAt(ctx, stream, t)
		if err == nil && v == 0 {
			err = notYetAt(stream, t)
		}
		return err
	}
	head, err := s.HeadVersion(ctx, stream)
	if err != nil || at == 0 {
		return err
	}
	return atInside(at, head)
}

// atInside refuses a load's version at outside 1..head.
func atInside(at, head int64) error {
	if at < 0 || at > head {
		return invalid(CodeInvalidVersion, "at=%d is outside 1..%d", at, head)
	}
	return nil
}

// notYetAt is the error of a load as of moment t before stream's first
// event.
func notYetAt(stream StreamID, t time.Time) error {
	return fmt.Errorf("stream %s at %s: %w", stream, t.Format(time.RFC3339Nano), ErrStreamNotYet)
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

// StateReader is implemented by stores that read a state at the head in
// fewer rounds of storage reads than LoadState and then ReadStream.
type StateReader interface {
	// ReadState reads stream's state at its head: begin is called once
	// with the State, before fn is called with each event of its Tail, in
	// order. It returns ErrStreamNotFound for a stream without events.
	ReadState(ctx context.Context, stream StreamID, begin func(State) error, fn func(*RecordedEvent) error) error
}

// ReadState reads stream's state as of version at (0: the head, read by
// the store's StateReader when it has one): begin is called once with the
// State, then fn with each event of its Tail in order. An error from begin
// or fn ends the read and is returned.
func ReadState(ctx context.Context, s Store, stream StreamID, at int64, begin func(State) error, fn func(*RecordedEvent) error) error {
	if r, ok := s.(StateReader); ok && at == 0 {
		var tail ReadRange
		err := r.ReadState(ctx, stream, func(st State) error {
			tail = st.Tail
			return begin(st)
		}, inOrder(&tail, fn))
		if err != nil {
			return err
		}
		return tailRead(&tail)
	}
	st, err := LoadState(ctx, s, stream, at)
	if err != nil {
		return err
	}
	return ReadTail(ctx, s, st, begin, fn)
}

// ReadTail calls begin with st, then reads st.Tail, calling fn with each
// event in order, and checks the read gave exactly the tail's versions.
func ReadTail(ctx context.Context, s Store, st State, begin func(State) error, fn func(*RecordedEvent) error) error {
	if err := begin(st); err != nil {
		return err
	}
	if st.TailEmpty() {
		return nil
	}
	tail := st.Tail
	if err := s.ReadStream(ctx, st.Tail, inOrder(&tail, fn)); err != nil {
		return err
	}
	return tailRead(&tail)
}

// inOrder passes events to fn while checking each is the next of *tail,
// whose From it moves on: a store that skipped or repeated a version must
// not make a wrong state look right.
func inOrder(tail *ReadRange, fn func(*RecordedEvent) error) func(*RecordedEvent) error {
	return func(e *RecordedEvent) error {
		if e.Version != tail.From || e.Version > tail.To {
			return fmt.Errorf("state of %s: read version %d, want %d (tail ends at %d)", tail.Stream, e.Version, tail.From, tail.To)
		}
		tail.From++
		return fn(e)
	}
}

// tailRead checks that inOrder saw the whole tail.
func tailRead(tail *ReadRange) error {
	if tail.From <= tail.To {
		return fmt.Errorf("state of %s: tail ended before version %d, want %d", tail.Stream, tail.From, tail.To)
	}
	return nil
}
