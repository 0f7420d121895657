package user

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Event types as stored in eventlog. They are part of the stored format:
// never rename one, add a new type instead.
const (
	TypeUserCreated = "UserCreated"
	TypeUserUpdated = "UserUpdated"
	TypeUserDeleted = "UserDeleted"
)

// Event is a fact about one user. Its JSON (struct tags) is its stored data.
type Event interface {
	// Type is the event type stored with it.
	Type() string
}

// UserCreated starts a user's stream, always at version 1.
type UserCreated struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	// EmailVersion is the version of the email's reservation stream at
	// which this user reserved it (see package commands).
	EmailVersion int64 `json:"email_version"`
}

// UserUpdated carries the user's full name and email after the update,
// not only what changed: a reader that missed an event (or starts from a
// later one) still gets the whole truth from the next.
type UserUpdated struct {
	Name         string `json:"name"`
	Email        string `json:"email"`
	EmailVersion int64  `json:"email_version"`
}

// UserDeleted ends a user; no command is accepted afterwards.
type UserDeleted struct{}

func (UserCreated) Type() string { return TypeUserCreated }
func (UserUpdated) Type() string { return TypeUserUpdated }
func (UserDeleted) Type() string { return TypeUserDeleted }

// Decode turns a stored event (type and JSON data) back into an Event. An
// unknown type is ErrUnknownEvent, so readers can skip events written by a
// newer version of the code.
func Decode(typ string, data []byte) (Event, error) {
	var e Event
	switch typ {
	case TypeUserCreated:
		var v UserCreated
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", typ, err)
		}
		e = v
	case TypeUserUpdated:
		var v UserUpdated
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", typ, err)
		}
		e = v
	case TypeUserDeleted:
		e = UserDeleted{}
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownEvent, typ)
	}
	return e, nil
}

// StreamPrefix starts every user stream id: the category "user" is what
// the projection's feed follows.
const (
	Category     = "user"
	StreamPrefix = Category + "-"
)

// Stream returns the eventlog stream of user id.
func Stream(id string) string { return StreamPrefix + id }

// IDFromStream returns the user id of a user stream, and false for any
// other stream.
func IDFromStream(stream string) (string, bool) {
	id, ok := strings.CutPrefix(stream, StreamPrefix)
	return id, ok && id != ""
}
