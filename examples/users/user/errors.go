package user

import "errors"

var (
	// ErrNotFound: no user has this id (or the id cannot be one).
	ErrNotFound = errors.New("user not found")
	// ErrExists: a user with this id already exists.
	ErrExists = errors.New("user already exists")
	// ErrDeleted: the user was deleted; it accepts no further command.
	ErrDeleted = errors.New("user deleted")
	// ErrEmailTaken: another user holds the email address.
	ErrEmailTaken = errors.New("email already taken")
	// ErrEmailNotReserved: a command that sets an email reached Decide
	// without a reservation (a bug in the caller, never the client's fault).
	ErrEmailNotReserved = errors.New("email not reserved")
	// ErrUnknownEvent: an event type this version of the code does not know.
	ErrUnknownEvent = errors.New("unknown event type")
)

// InvalidError is a command rejected for its own content, whatever the
// state: a missing name, a malformed email. Field names the JSON field.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}
