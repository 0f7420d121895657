package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/user"
)

// snapshotFormat versions the snapshot JSON. A snapshot of another format
// is ignored and the stream replayed, so changing user.State never needs
// a migration of stored snapshots: bump this.
const snapshotFormat = 1

type snapshot struct {
	Format int        `json:"format"`
	State  user.State `json:"state"`
}

// Load returns user id's state at the head of its stream: the latest
// snapshot and the events after it, in one request. A user that does not
// exist is the zero State (Exists false), not an error.
func (h *Handler) Load(ctx context.Context, id string) (user.State, error) {
	return h.loadAt(ctx, id, 0)
}

// loadAt loads the state at version at (0: the head).
func (h *Handler) loadAt(ctx context.Context, id string, at int64) (user.State, error) {
	if !user.ValidID(id) {
		return user.State{}, nil
	}
	stream := user.Stream(id)
	st, err := h.c.State(ctx, stream, at)
	if errors.Is(err, client.ErrStreamNotFound) {
		return user.State{}, nil
	}
	if err != nil {
		return user.State{}, err
	}
	var s user.State
	if st.Snapshot != nil {
		var snap snapshot
		if err := st.Snapshot.DecodeState(&snap); err != nil || snap.Format != snapshotFormat || snap.State.Version != st.Snapshot.Version {
			h.o.Logger.Warn("ignoring snapshot", "stream", stream, "version", st.Snapshot.Version, "format", snap.Format, "err", err)
			return h.replay(ctx, stream, st.Version)
		}
		s = snap.State
	}
	for i := range st.Events {
		if s, err = applyEvent(s, &st.Events[i]); err != nil {
			return user.State{}, err
		}
	}
	return s, nil
}

// replay folds every event of stream up to version to.
func (h *Handler) replay(ctx context.Context, stream string, to int64) (user.State, error) {
	var s user.State
	for ev, err := range h.c.Replay(ctx, stream, client.ReplayOptions{To: to}) {
		if err != nil {
			return user.State{}, err
		}
		if s, err = applyEvent(s, &ev); err != nil {
			return user.State{}, err
		}
	}
	return s, nil
}

// applyEvent decodes ev and applies it. An event this code does not know
// fails the load: deciding on a state that skipped a fact could break the
// rules the fact established.
func applyEvent(s user.State, ev *client.Event) (user.State, error) {
	e, err := user.Decode(ev.Type, ev.Data)
	if err != nil {
		return user.State{}, fmt.Errorf("%s@%d: %w", ev.Stream, ev.Version, err)
	}
	return user.Apply(s, user.Recorded{Version: ev.Version, Time: ev.Time, Event: e}), nil
}

// maybeSnapshot stores a snapshot at version after when the append from
// version before reached a multiple of SnapshotEvery. The state is loaded
// at that version rather than taken from the command, so the snapshot is
// exactly the fold of the stored events (commit times included). A
// failure is only logged: snapshots make loads shorter, they are never
// needed for correctness.
func (h *Handler) maybeSnapshot(ctx context.Context, id string, before, after int64) {
	n := h.o.SnapshotEvery
	if after/n == before/n {
		return
	}
	stream := user.Stream(id)
	s, err := h.loadAt(ctx, id, after)
	if err == nil {
		var body []byte
		if body, err = json.Marshal(snapshot{Format: snapshotFormat, State: s}); err == nil {
			_, err = h.c.PutSnapshot(ctx, stream, after, json.RawMessage(body))
		}
	}
	if err != nil {
		h.o.Logger.Warn("snapshot not stored", "stream", stream, "version", after, "err", err)
	}
}
