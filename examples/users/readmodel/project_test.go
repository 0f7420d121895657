package readmodel_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/internal/testenv"
	"github.com/eventlog/eventlog/examples/users/readmodel"
	"github.com/eventlog/eventlog/examples/users/user"
)

// MustStore opens a read model in a fresh keyspace, dropped after the test.
func MustStore(t *testing.T) *readmodel.Store {
	t.Helper()
	s, err := readmodel.Open(testenv.Context(t), readmodel.Options{Hosts: testenv.Hosts(), Keyspace: testenv.Keyspace(t)})
	if err != nil {
		t.Fatalf("open (is Cassandra up? scripts/cassandra up): %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fe is the feed event of e at version v of user id's stream.
func fe(id string, v int64, e user.Event) client.FeedEvent {
	data, _ := json.Marshal(e)
	return client.FeedEvent{Event: client.Event{
		Stream: user.Stream(id), Type: e.Type(), Version: v, Time: t0.Add(time.Duration(v) * time.Second), Data: data,
	}}
}

// MustProject projects evs in order.
func MustProject(t *testing.T, s *readmodel.Store, evs ...client.FeedEvent) {
	t.Helper()
	for _, ev := range evs {
		if err := readmodel.Project(testenv.Context(t), s, ev); err != nil {
			t.Fatalf("project %s@%d: %v", ev.Stream, ev.Version, err)
		}
	}
}

// MustGet reads user id, or the zero State if it is not found.
func MustGet(t *testing.T, s *readmodel.Store, id string) user.State {
	t.Helper()
	st, err := s.Get(testenv.Context(t), id)
	if err != nil && !errors.Is(err, user.ErrNotFound) {
		t.Fatal(err)
	}
	return st
}

// ByEmail returns the id the read model finds for email ("" if none).
func ByEmail(t *testing.T, s *readmodel.Store, email string) string {
	t.Helper()
	st, err := s.ByEmail(testenv.Context(t), email)
	if errors.Is(err, user.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}

func TestProject(t *testing.T) {
	s := MustStore(t)
	created := fe("ada", 1, user.UserCreated{ID: "ada", Name: "Ada", Email: "ada@example.com", EmailVersion: 1})
	renamed := fe("ada", 2, user.UserUpdated{Name: "Ada Lovelace", Email: "ada@example.com", EmailVersion: 1})
	want1 := user.State{ID: "ada", Name: "Ada", Email: "ada@example.com", EmailVersion: 1, CreatedAt: created.Time, UpdatedAt: created.Time, Version: 1}
	want2 := want1
	want2.Name, want2.UpdatedAt, want2.Version = "Ada Lovelace", renamed.Time, 2

	t.Run("Created", func(t *testing.T) {
		MustProject(t, s, created)
		if got := MustGet(t, s, "ada"); got != want1 {
			t.Fatalf("got  %+v\nwant %+v", got, want1)
		}
		if got := ByEmail(t, s, " ADA@example.com"); got != "ada" {
			t.Fatalf("by email: %q", got)
		}
	})
	t.Run("SameEventTwice", func(t *testing.T) {
		MustProject(t, s, created)
		if got := MustGet(t, s, "ada"); got != want1 {
			t.Fatalf("got  %+v\nwant %+v", got, want1)
		}
	})
	t.Run("Updated", func(t *testing.T) {
		MustProject(t, s, renamed, renamed)
		if got := MustGet(t, s, "ada"); got != want2 {
			t.Fatalf("got  %+v\nwant %+v", got, want2)
		}
	})
	t.Run("OutOfDateEvent", func(t *testing.T) {
		MustProject(t, s, created) // v1 after v2: a redelivery from before
		if got := MustGet(t, s, "ada"); got != want2 {
			t.Fatalf("got  %+v\nwant %+v", got, want2)
		}
		if got := ByEmail(t, s, "ada@example.com"); got != "ada" {
			t.Fatalf("by email: %q", got)
		}
	})
	t.Run("Deleted", func(t *testing.T) {
		MustProject(t, s, fe("ada", 3, user.UserDeleted{}), created, renamed)
		if got := MustGet(t, s, "ada"); !got.Deleted || got.Version != 3 || got.Name != "Ada Lovelace" {
			t.Fatalf("got %+v, want deleted at version 3", got)
		}
		if got := ByEmail(t, s, "ada@example.com"); got != "" {
			t.Fatalf("a deleted user is found by email: %q", got)
		}
	})
	t.Run("Skipped", func(t *testing.T) {
		other := fe("x", 1, user.UserCreated{ID: "x", Name: "X", Email: "x@example.com", EmailVersion: 1})
		other.Stream = "email-x"
		unknown := fe("bob", 1, user.UserCreated{})
		unknown.Type = "UserInvented"
		MustProject(t, s, other, unknown)
		if got := MustGet(t, s, "bob"); got.Exists() {
			t.Fatalf("unknown event type projected: %+v", got)
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		bad := fe("bob", 1, user.UserCreated{})
		bad.Data = json.RawMessage(`{"name":1}`)
		if err := readmodel.Project(testenv.Context(t), s, bad); err == nil {
			t.Fatal("a malformed event was accepted")
		}
	})
	t.Run("LateStart", func(t *testing.T) {
		// A projection that starts mid-stream still builds the user
		// from the first event it sees.
		MustProject(t, s, fe("cy", 5, user.UserUpdated{Name: "Cy", Email: "cy@example.com", EmailVersion: 2}))
		if got := MustGet(t, s, "cy"); got.Name != "Cy" || got.Version != 5 || ByEmail(t, s, "cy@example.com") != "cy" {
			t.Fatalf("got %+v", got)
		}
	})
}

// TestProjectEmailHandOver: Ada moves from one address to another and
// Bob takes the old one. Each user's events arrive in order, but the two
// users' in any interleaving, some events twice (as consumer group
// members do): the index always ends right.
func TestProjectEmailHandOver(t *testing.T) {
	s := MustStore(t)
	for i, order := range []string{"AaB", "ABa", "BAa", "AABaaB", "BAABaa", "ABaAB"} {
		t.Run(order, func(t *testing.T) {
			ada, bob := fmt.Sprintf("ada%d", i), fmt.Sprintf("bob%d", i)
			old, nu := fmt.Sprintf("old%d@example.com", i), fmt.Sprintf("new%d@example.com", i)
			// Reservation versions: Ada reserved old at 1, released it
			// at 2, Bob reserved it at 3.
			evs := map[byte]client.FeedEvent{
				'A': fe(ada, 1, user.UserCreated{ID: ada, Name: "Ada", Email: old, EmailVersion: 1}),
				'a': fe(ada, 2, user.UserUpdated{Name: "Ada", Email: nu, EmailVersion: 1}),
				'B': fe(bob, 1, user.UserCreated{ID: bob, Name: "Bob", Email: old, EmailVersion: 3}),
			}
			for j := range len(order) {
				MustProject(t, s, evs[order[j]])
			}
			if got := ByEmail(t, s, old); got != bob {
				t.Errorf("%s -> %q, want %q", old, got, bob)
			}
			if got := ByEmail(t, s, nu); got != ada {
				t.Errorf("%s -> %q, want %q", nu, got, ada)
			}
		})
	}
}
