package user_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/eventlog/eventlog/examples/users/user"
)

var (
	t1 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	t2 = t1.Add(time.Minute)
	t3 = t2.Add(time.Minute)
)

// ada is the state after UserCreated at version 1.
var ada = user.State{ID: "u1", Name: "Ada", Email: "ada@example.com", EmailVersion: 1, CreatedAt: t1, UpdatedAt: t1, Version: 1}

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name string
		from user.State
		rec  user.Recorded
		want user.State
	}{
		{"UserCreated", user.State{},
			user.Recorded{Version: 1, Time: t1, Event: user.UserCreated{ID: "u1", Name: "Ada", Email: "ada@example.com", EmailVersion: 1}},
			ada},
		{"UserUpdated", ada,
			user.Recorded{Version: 2, Time: t2, Event: user.UserUpdated{Name: "Ada L.", Email: "ada@l.org", EmailVersion: 3}},
			user.State{ID: "u1", Name: "Ada L.", Email: "ada@l.org", EmailVersion: 3, CreatedAt: t1, UpdatedAt: t2, Version: 2}},
		{"UserDeleted", ada,
			user.Recorded{Version: 2, Time: t2, Event: user.UserDeleted{}},
			user.State{ID: "u1", Name: "Ada", Email: "ada@example.com", EmailVersion: 1, Deleted: true, CreatedAt: t1, UpdatedAt: t2, Version: 2}},
		// Total: an update seen without its creation (a reader that
		// started late) still yields the user's name and email.
		{"UserUpdatedOnEmpty", user.State{},
			user.Recorded{Version: 7, Time: t3, Event: user.UserUpdated{Name: "Ada", Email: "ada@example.com", EmailVersion: 2}},
			user.State{Name: "Ada", Email: "ada@example.com", EmailVersion: 2, UpdatedAt: t3, Version: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := tc.from
			got := user.Apply(tc.from, tc.rec)
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if tc.from != from {
				t.Errorf("Apply changed its input: %+v", tc.from)
			}
			// Pure: the same inputs give the same output, every time.
			if again := user.Apply(tc.from, tc.rec); again != got {
				t.Errorf("second Apply gave %+v, first %+v", again, got)
			}
		})
	}
}

func TestFold(t *testing.T) {
	events := []user.Recorded{
		{Version: 1, Time: t1, Event: user.UserCreated{ID: "u1", Name: "Ada", Email: "ada@example.com", EmailVersion: 1}},
		{Version: 2, Time: t2, Event: user.UserUpdated{Name: "Ada L.", Email: "ada@example.com", EmailVersion: 1}},
		{Version: 3, Time: t3, Event: user.UserDeleted{}},
	}
	got := user.Fold(user.State{}, events...)
	want := user.State{ID: "u1", Name: "Ada L.", Email: "ada@example.com", EmailVersion: 1, Deleted: true, CreatedAt: t1, UpdatedAt: t3, Version: 3}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// A snapshot is a fold of a prefix: folding the rest onto it is the
	// same as folding everything.
	snap := user.Fold(user.State{}, events[:2]...)
	if rest := user.Fold(snap, events[2:]...); rest != got {
		t.Errorf("snapshot + rest = %+v, full fold %+v", rest, got)
	}
	if !reflect.DeepEqual(events[0].Event, user.UserCreated{ID: "u1", Name: "Ada", Email: "ada@example.com", EmailVersion: 1}) {
		t.Error("Fold changed its events")
	}
}
