package user

import "time"

// State is a user as its events built it. It is also the snapshot format
// and, in the read model, the row: both sides fold events with the same
// Apply.
type State struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	EmailVersion int64     `json:"email_version"`
	Deleted      bool      `json:"deleted"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// Version is the stream version of the last event applied; 0: no user.
	Version int64 `json:"version"`
}

// Exists reports whether any event has been applied.
func (s State) Exists() bool { return s.Version > 0 }

// Recorded is an event as eventlog stored it: with its stream version and
// commit time, which Apply records in the state.
type Recorded struct {
	Version int64
	Time    time.Time
	Event   Event
}

// Apply returns the state after r. It is pure (s is a value, nothing else
// is read) and total: an event is a fact, so it is applied whatever the
// state, which is what lets a projection that starts late, or sees an
// event twice, still converge.
func Apply(s State, r Recorded) State {
	switch e := r.Event.(type) {
	case UserCreated:
		s.ID, s.Name, s.Email, s.EmailVersion = e.ID, e.Name, e.Email, e.EmailVersion
		s.Deleted = false
		s.CreatedAt = r.Time
	case UserUpdated:
		s.Name, s.Email, s.EmailVersion = e.Name, e.Email, e.EmailVersion
	case UserDeleted:
		s.Deleted = true
	}
	s.UpdatedAt = r.Time
	s.Version = r.Version
	return s
}

// Fold applies events in order to s.
func Fold(s State, events ...Recorded) State {
	for _, r := range events {
		s = Apply(s, r)
	}
	return s
}
