package user_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/examples/users/user"
)

func ptr(s string) *string { return &s }

var deleted = func() user.State { s := ada; s.Deleted, s.Version = true, 2; return s }()

func TestDecide(t *testing.T) {
	var invalid *user.InvalidError
	for _, tc := range []struct {
		name    string
		state   user.State
		cmd     user.Command
		emailV  int64
		want    []user.Event
		wantErr error  // matched with errors.Is
		invalid string // the field of the *InvalidError wanted ("-": none)
	}{
		{name: "CreateOK", cmd: user.CreateUser{ID: "u1", Name: "Ada", Email: "ada@example.com"}, emailV: 1,
			want: []user.Event{user.UserCreated{ID: "u1", Name: "Ada", Email: "ada@example.com", EmailVersion: 1}}},
		{name: "CreateNormalizes", cmd: user.CreateUser{ID: "u1", Name: "  Ada ", Email: " Ada@Example.COM "}, emailV: 4,
			want: []user.Event{user.UserCreated{ID: "u1", Name: "Ada", Email: "ada@example.com", EmailVersion: 4}}},
		{name: "CreateExists", state: ada, cmd: user.CreateUser{ID: "u1", Name: "Ada", Email: "ada@example.com"}, emailV: 1,
			wantErr: user.ErrExists},
		{name: "CreateEmptyName", cmd: user.CreateUser{ID: "u1", Name: "  ", Email: "ada@example.com"}, emailV: 1,
			invalid: "name"},
		{name: "CreateBadEmail", cmd: user.CreateUser{ID: "u1", Name: "Ada", Email: "ada.example.com"}, emailV: 1,
			invalid: "email"},
		{name: "CreateBadID", cmd: user.CreateUser{ID: "u/1", Name: "Ada", Email: "ada@example.com"}, emailV: 1,
			invalid: "id"},
		{name: "CreateNotReserved", cmd: user.CreateUser{ID: "u1", Name: "Ada", Email: "ada@example.com"},
			wantErr: user.ErrEmailNotReserved},

		{name: "UpdateName", state: ada, cmd: user.UpdateUser{ID: "u1", Name: ptr("Ada Lovelace")},
			want: []user.Event{user.UserUpdated{Name: "Ada Lovelace", Email: "ada@example.com", EmailVersion: 1}}},
		{name: "UpdateEmail", state: ada, cmd: user.UpdateUser{ID: "u1", Email: ptr("ada@lovelace.org")}, emailV: 2,
			want: []user.Event{user.UserUpdated{Name: "Ada", Email: "ada@lovelace.org", EmailVersion: 2}}},
		{name: "UpdateEmailNotReserved", state: ada, cmd: user.UpdateUser{ID: "u1", Email: ptr("ada@lovelace.org")},
			wantErr: user.ErrEmailNotReserved},
		{name: "UpdateSameEmailOtherCase", state: ada, cmd: user.UpdateUser{ID: "u1", Email: ptr("ADA@example.com")},
			want: nil},
		{name: "UpdateNoChange", state: ada, cmd: user.UpdateUser{ID: "u1", Name: ptr("Ada"), Email: ptr("ada@example.com")},
			want: nil},
		{name: "UpdateNothing", state: ada, cmd: user.UpdateUser{ID: "u1"}, invalid: "-"},
		{name: "UpdateEmptyName", state: ada, cmd: user.UpdateUser{ID: "u1", Name: ptr("")}, invalid: "name"},
		{name: "UpdateBadEmail", state: ada, cmd: user.UpdateUser{ID: "u1", Email: ptr("ada@localhost")}, invalid: "email"},
		{name: "UpdateNotFound", cmd: user.UpdateUser{ID: "u1", Name: ptr("Ada")}, wantErr: user.ErrNotFound},
		{name: "UpdateBadID", cmd: user.UpdateUser{ID: "../x", Name: ptr("Ada")}, wantErr: user.ErrNotFound},
		{name: "UpdateDeleted", state: deleted, cmd: user.UpdateUser{ID: "u1", Name: ptr("Ada")}, wantErr: user.ErrDeleted},

		{name: "DeleteOK", state: ada, cmd: user.DeleteUser{ID: "u1"}, want: []user.Event{user.UserDeleted{}}},
		{name: "DeleteDeleted", state: deleted, cmd: user.DeleteUser{ID: "u1"}, wantErr: user.ErrDeleted},
		{name: "DeleteNotFound", cmd: user.DeleteUser{ID: "u1"}, wantErr: user.ErrNotFound},
		{name: "NoCommand", cmd: nil, invalid: "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := user.Decide(tc.state, tc.cmd, tc.emailV)
			switch {
			case tc.invalid != "":
				field := strings.TrimPrefix(tc.invalid, "-")
				if !errors.As(err, &invalid) || invalid.Field != field {
					t.Fatalf("err = %v, want *InvalidError on field %q", err, field)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events = %#v, want %#v", got, tc.want)
			}
			// Check agrees with Decide on every rejection but the
			// missing reservation, which only Decide can see.
			if cerr := user.Check(tc.state, tc.cmd); (cerr == nil) != (err == nil || errors.Is(err, user.ErrEmailNotReserved)) {
				t.Errorf("Check = %v, Decide = %v", cerr, err)
			}
		})
	}
}

func TestNewEmail(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state user.State
		cmd   user.Command
		want  string
	}{
		{"Create", user.State{}, user.CreateUser{ID: "u1", Name: "Ada", Email: "Ada@Example.com"}, "ada@example.com"},
		{"UpdateNewEmail", ada, user.UpdateUser{ID: "u1", Email: ptr("ada@l.org")}, "ada@l.org"},
		{"UpdateSameEmail", ada, user.UpdateUser{ID: "u1", Email: ptr(" ADA@example.com")}, ""},
		{"UpdateNameOnly", ada, user.UpdateUser{ID: "u1", Name: ptr("A")}, ""},
		{"UpdateInvalid", ada, user.UpdateUser{ID: "u1", Email: ptr("nope")}, ""},
		{"Delete", ada, user.DeleteUser{ID: "u1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := user.NewEmail(tc.state, tc.cmd); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDecideApply runs a user's life through Decide and Apply, as the
// command side does.
func TestDecideApply(t *testing.T) {
	var s user.State
	step := func(c user.Command, emailV int64) {
		t.Helper()
		evs, err := user.Decide(s, c, emailV)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, e := range evs {
			s = user.Apply(s, user.Recorded{Version: s.Version + 1, Time: t1, Event: e})
		}
	}
	step(user.CreateUser{ID: "u1", Name: "Ada", Email: "ada@example.com"}, 1)
	step(user.UpdateUser{ID: "u1", Name: ptr("Ada Lovelace")}, 0)
	step(user.UpdateUser{ID: "u1", Email: ptr("ada@lovelace.org")}, 1)
	step(user.DeleteUser{ID: "u1"}, 0)
	want := user.State{ID: "u1", Name: "Ada Lovelace", Email: "ada@lovelace.org", EmailVersion: 1, Deleted: true, CreatedAt: t1, UpdatedAt: t1, Version: 4}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	if _, err := user.Decide(s, user.UpdateUser{ID: "u1", Name: ptr("x")}, 0); !errors.Is(err, user.ErrDeleted) {
		t.Errorf("update after delete: %v, want ErrDeleted", err)
	}
}
