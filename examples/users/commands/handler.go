package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/user"
)

// releaseTimeout bounds the release of a reservation a failed command
// made.
const releaseTimeout = 10 * time.Second

// Handler carries out user commands against eventlog. It is safe for
// concurrent use; it keeps no state between commands.
type Handler struct {
	c *client.Client
	o Options
}

// New returns a Handler over c with o (after EnsureDefaults).
func New(c *client.Client, o Options) (*Handler, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	return &Handler{c: c, o: o}, nil
}

// Result is what a command did.
type Result struct {
	// ID is the user's id (generated for a CreateUser without one).
	ID string
	// Version is the user's stream version after the command: the read
	// model shows the command's effect once it shows this version.
	Version int64
	// Changed is false for an update that changed nothing.
	Changed bool
}

// Handle carries out cmd. A user.CreateUser without an ID gets a new
// UUIDv7. Errors: *user.InvalidError, user.ErrNotFound, ErrExists,
// ErrDeleted, ErrEmailTaken, ErrConflict, or the client's errors (an
// error matching client.ErrOutcomeUnknown means the events may have been
// stored).
func (h *Handler) Handle(ctx context.Context, cmd user.Command) (Result, error) {
	if c, ok := cmd.(user.CreateUser); ok && c.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return Result{}, err
		}
		c.ID = id.String()
		cmd = c
	}
	id := cmd.UserID()
	// held is the reservation this command made, kept across attempts
	// so a retry after a conflict does not reserve again.
	var held struct {
		email   string
		version int64
		used    bool // an append carrying it was (or may have been) stored
	}
	defer func() {
		if held.email != "" && !held.used {
			// Also after the command's deadline: an unused reservation
			// would block the address for ReservationGrace.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			defer cancel()
			h.releaseLogged(rctx, held.email, id, held.version)
		}
	}()
	for attempt := 1; ; attempt++ {
		s, err := h.Load(ctx, id)
		if err != nil {
			return Result{}, err
		}
		if err := user.Check(s, cmd); err != nil {
			return Result{}, err
		}
		var emailVersion int64
		if email := user.NewEmail(s, cmd); email != "" {
			if held.email != email {
				v, err := h.reserve(ctx, email, id)
				if err != nil {
					return Result{}, err
				}
				held.email, held.version = email, v
			}
			emailVersion = held.version
		}
		events, err := user.Decide(s, cmd, emailVersion)
		if err != nil {
			return Result{}, err
		}
		if len(events) == 0 {
			return Result{ID: id, Version: s.Version}, nil
		}
		data := make([]client.EventData, len(events))
		for i, e := range events {
			data[i] = client.EventData{Type: e.Type(), Data: e}
		}
		res, err := h.c.Append(ctx, user.Stream(id), client.Exact(s.Version), data...)
		if errors.Is(err, client.ErrWrongExpectedVersion) {
			if attempt < h.o.MaxAttempts {
				continue // changed since we loaded it: decide again
			}
			return Result{}, ErrConflict
		}
		if err != nil {
			// An unknown outcome may have stored the events: keep the
			// reservation (a stale one is taken over later anyway).
			held.used = errors.Is(err, client.ErrOutcomeUnknown)
			return Result{}, err
		}
		held.used = emailVersion != 0
		// The append's answer has no commit times, which only the
		// snapshot needs (maybeSnapshot loads them); the rest of the
		// state after it is known here.
		after := s
		for i, e := range events {
			after = user.Apply(after, user.Recorded{Version: res.Events[i].Version, Event: e})
		}
		if s.Email != "" && (after.Email != s.Email || after.Deleted) {
			h.releaseLogged(ctx, s.Email, id, s.EmailVersion)
		}
		h.maybeSnapshot(ctx, id, s.Version, after.Version)
		return Result{ID: id, Version: after.Version, Changed: true}, nil
	}
}

// releaseLogged releases and logs a failure: the command has succeeded
// (or failed for its own reason) either way, and a reservation left over
// is taken over after ReservationGrace.
func (h *Handler) releaseLogged(ctx context.Context, email, id string, version int64) {
	if err := h.release(ctx, email, id, version); err != nil {
		h.o.Logger.Warn("email reservation not released", "stream", EmailStream(email), "user", id, "err", err)
	}
}
