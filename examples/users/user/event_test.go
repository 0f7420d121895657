package user_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/eventlog/eventlog/examples/users/user"
)

// TestEventFormat pins the stored JSON of every event type: changing it
// breaks every stream already written.
func TestEventFormat(t *testing.T) {
	for _, tc := range []struct {
		ev   user.Event
		typ  string
		data string
	}{
		{user.UserCreated{ID: "u1", Name: "Ada", Email: "ada@example.com", EmailVersion: 1},
			"UserCreated", `{"id":"u1","name":"Ada","email":"ada@example.com","email_version":1}`},
		{user.UserUpdated{Name: "Ada L.", Email: "ada@l.org", EmailVersion: 3},
			"UserUpdated", `{"name":"Ada L.","email":"ada@l.org","email_version":3}`},
		{user.UserDeleted{}, "UserDeleted", `{}`},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			data, err := json.Marshal(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.ev.Type(); got != tc.typ {
				t.Errorf("type %q, want %q", got, tc.typ)
			}
			if string(data) != tc.data {
				t.Errorf("data %s, want %s", data, tc.data)
			}
			back, err := user.Decode(tc.typ, data)
			if err != nil || !reflect.DeepEqual(back, tc.ev) {
				t.Errorf("Decode = %#v, %v; want %#v", back, err, tc.ev)
			}
		})
	}
	t.Run("ErrUnknownEvent", func(t *testing.T) {
		if _, err := user.Decode("UserRenamed", []byte(`{}`)); !errors.Is(err, user.ErrUnknownEvent) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		if _, err := user.Decode("UserCreated", []byte(`{"name":1}`)); err == nil || errors.Is(err, user.ErrUnknownEvent) {
			t.Errorf("err = %v, want a decode error", err)
		}
	})
}

func TestIDFromStream(t *testing.T) {
	for stream, want := range map[string]string{"user-u1": "u1", "user-a-b": "a-b", "user-": "", "email-x": "", "users-1": ""} {
		got, ok := user.IDFromStream(stream)
		if got != want && ok || ok != (want != "") {
			t.Errorf("IDFromStream(%q) = %q, %v; want %q", stream, got, ok, want)
		}
	}
	if got := user.Stream("u1"); got != "user-u1" {
		t.Errorf("Stream = %q", got)
	}
}
