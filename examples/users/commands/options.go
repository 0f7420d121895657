package commands

import (
	"errors"
	"log/slog"
	"time"
)

// Options configure a Handler. Zero fields take the defaults documented on
// each through EnsureDefaults.
type Options struct {
	// SnapshotEvery: a snapshot is stored each time a user's stream reaches
	// a multiple of it, so a load reads at most SnapshotEvery-1 events
	// after the snapshot. Default 5.
	SnapshotEvery int64
	// MaxAttempts bounds how often a command is decided and appended when
	// the user changes concurrently. Default 5.
	MaxAttempts int
	// ReservationGrace is how old a reservation whose owner does not hold
	// the address must be before another user may take it over. It must
	// exceed the longest time an append can still commit after its
	// command reserved: the command's timeout plus the eventlog server's
	// append timeout (30s). Default 2m.
	ReservationGrace time.Duration
	// Logger receives the failures that do not fail a command (a snapshot
	// not stored, an old address not released). Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = 5
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	if o.ReservationGrace == 0 {
		o.ReservationGrace = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	switch {
	case o.SnapshotEvery < 1:
		return errors.New("snapshot every must be at least 1")
	case o.MaxAttempts < 1:
		return errors.New("max attempts must be at least 1")
	case o.ReservationGrace <= 0:
		return errors.New("reservation grace must be positive")
	}
	return nil
}
