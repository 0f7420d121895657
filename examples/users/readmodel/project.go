package readmodel

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/user"
)

// Project applies one event of the "user" category feed to the read
// model. It is the consumer group's handler, and a plain function of the
// store and the event so tests can call it directly. Delivering an event
// again, or an older event of a user after a newer one, changes nothing
// (see the package comment).
//
// Events of other streams and of unknown types (written by newer code)
// are skipped; an event of a known type that does not decode is an error,
// which stops the consumer at that event until the code is fixed, rather
// than leave the read model silently wrong.
func Project(ctx context.Context, s *Store, ev client.FeedEvent) error {
	id, ok := user.IDFromStream(ev.Stream)
	if !ok {
		return nil
	}
	e, err := user.Decode(ev.Type, ev.Data)
	if errors.Is(err, user.ErrUnknownEvent) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("project %s@%d: %w", ev.Stream, ev.Version, err)
	}
	for range 10 {
		prev, err := s.get(ctx, id)
		if err != nil {
			return err
		}
		if prev.Version >= ev.Version {
			return nil // seen already
		}
		next := user.Apply(prev, user.Recorded{Version: ev.Version, Time: ev.Time, Event: e})
		next.ID = id
		if err := reindex(ctx, s, id, prev, next); err != nil {
			return fmt.Errorf("project %s@%d: %w", ev.Stream, ev.Version, err)
		}
		applied, err := s.commit(ctx, prev, next)
		if err != nil || applied {
			return err
		}
		// Another delivery moved the row meanwhile: read it again.
	}
	return fmt.Errorf("project %s@%d: the row keeps changing", ev.Stream, ev.Version)
}

// reindex moves the email index from prev to next.
func reindex(ctx context.Context, s *Store, id string, prev, next user.State) error {
	held := func(st user.State) bool { return st.Email != "" && !st.Deleted }
	if held(prev) && (!held(next) || next.Email != prev.Email) {
		if err := s.unindex(ctx, prev.Email, prev.EmailVersion); err != nil {
			return err
		}
	}
	if held(next) && (!held(prev) || next.Email != prev.Email) {
		return s.index(ctx, next.Email, id, next.EmailVersion)
	}
	return nil
}
