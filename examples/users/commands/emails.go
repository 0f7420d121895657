package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/user"
)

// Reservation event types, on the email-<hash> streams.
const (
	TypeEmailReserved = "EmailReserved"
	TypeEmailReleased = "EmailReleased"
)

// reservationEvent is the data of both reservation events.
type reservationEvent struct {
	Email  string `json:"email"`
	UserID string `json:"user_id"`
}

// EmailStream returns the reservation stream of a normalised address. The
// address is hashed because stream ids allow fewer characters than
// addresses do; the events carry the address itself for readers.
func EmailStream(email string) string {
	sum := sha256.Sum256([]byte(email))
	return "email-" + hex.EncodeToString(sum[:])
}

// reservation is the last event of a reservation stream.
type reservation struct {
	version int64     // 0: never reserved
	held    bool      // last event is EmailReserved
	at      time.Time // its commit time
	ev      reservationEvent
}

func (h *Handler) readReservation(ctx context.Context, stream string) (reservation, error) {
	p, err := h.c.Read(ctx, stream, client.ReadOptions{Backward: true, Limit: 1})
	if errors.Is(err, client.ErrStreamNotFound) {
		return reservation{}, nil
	}
	if err != nil {
		return reservation{}, err
	}
	if len(p.Events) == 0 {
		return reservation{}, fmt.Errorf("read %s: no last event", stream)
	}
	ev := &p.Events[0]
	r := reservation{version: ev.Version, held: ev.Type == TypeEmailReserved, at: ev.Time}
	if err := ev.DecodeData(&r.ev); err != nil {
		return reservation{}, fmt.Errorf("%s@%d: %w", stream, ev.Version, err)
	}
	return r, nil
}

// reserve makes id the holder of email and returns the reservation
// stream's version after it: the fencing token user events carry. It
// fails with user.ErrEmailTaken while another user holds the address.
func (h *Handler) reserve(ctx context.Context, email, id string) (int64, error) {
	stream := EmailStream(email)
	for attempt := 1; ; attempt++ {
		r, err := h.readReservation(ctx, stream)
		if err != nil {
			return 0, err
		}
		if r.held && r.ev.UserID != id {
			stale, err := h.stale(ctx, email, r)
			if err != nil {
				return 0, err
			}
			if !stale {
				return 0, user.ErrEmailTaken
			}
			h.o.Logger.Info("taking over a stale email reservation", "stream", stream, "from", r.ev.UserID, "to", id)
		}
		// Always append, also when id holds it already: every reservation
		// gets its own version, so a release of an older one (fenced on
		// its version) cannot undo this one.
		res, err := h.c.Append(ctx, stream, client.Exact(r.version),
			client.EventData{Type: TypeEmailReserved, Data: reservationEvent{Email: email, UserID: id}})
		switch {
		case err == nil:
			return res.LastVersion, nil
		case errors.Is(err, client.ErrWrongExpectedVersion) && attempt < h.o.MaxAttempts:
			continue
		case errors.Is(err, client.ErrWrongExpectedVersion):
			return 0, ErrConflict
		}
		return 0, err
	}
}

// stale reports whether a reservation may be taken over: its holder does
// not hold the address (never created, moved on, deleted) and the
// reservation is older than any command that could still be using it.
func (h *Handler) stale(ctx context.Context, email string, r reservation) (bool, error) {
	if h.o.Now().Sub(r.at) < h.o.ReservationGrace {
		return false, nil
	}
	holds, err := h.holds(ctx, r.ev.UserID, email)
	return !holds, err
}

// holds reports whether user id, as stored now, has email.
func (h *Handler) holds(ctx context.Context, id, email string) (bool, error) {
	s, err := h.Load(ctx, id)
	if err != nil {
		return false, err
	}
	return s.Exists() && !s.Deleted && s.Email == email, nil
}

// release frees email if the reservation at version is still the last
// one and its holder id does not hold the address. Fencing on the version
// leaves alone any later reservation (also a later one by the same user);
// the holds check keeps an address the user took with that reservation.
// It returns nil when there is nothing to free.
func (h *Handler) release(ctx context.Context, email, id string, version int64) error {
	stream := EmailStream(email)
	r, err := h.readReservation(ctx, stream)
	if err != nil {
		return err
	}
	if !r.held || r.version != version || r.ev.UserID != id {
		return nil
	}
	if holds, err := h.holds(ctx, id, email); err != nil || holds {
		return err
	}
	_, err = h.c.Append(ctx, stream, client.Exact(version),
		client.EventData{Type: TypeEmailReleased, Data: reservationEvent{Email: email, UserID: id}})
	if errors.Is(err, client.ErrWrongExpectedVersion) {
		return nil // reserved again since: no longer ours to free
	}
	return err
}
