package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/commands"
	"github.com/eventlog/eventlog/examples/users/user"
	"github.com/eventlog/eventlog/examples/users/web"
)

// fake answers every command and query with err, recording the command.
// The real sides are tested in their packages and end to end in
// cmd/users; this checks binding and the error table.
type fake struct {
	err  error
	last user.Command
}

func (f *fake) Handle(_ context.Context, cmd user.Command) (commands.Result, error) {
	f.last = cmd
	return commands.Result{ID: "u1", Version: 3, Changed: true}, f.err
}

func (f *fake) Get(_ context.Context, id string) (user.State, error) {
	return user.State{ID: id, Name: "Ada", Email: "ada@example.com", Version: 3}, f.err
}

func (f *fake) ByEmail(_ context.Context, email string) (user.State, error) {
	return user.State{ID: "u1", Name: "Ada", Email: email, Version: 3}, f.err
}

func do(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	b, _ := io.ReadAll(rec.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, b, err)
	}
	return rec.Code, m
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{&user.InvalidError{Field: "email", Message: "bad"}, 400, "invalid_command"},
		{user.ErrNotFound, 404, "user_not_found"},
		{user.ErrDeleted, 410, "user_deleted"},
		{user.ErrExists, 409, "user_exists"},
		{fmt.Errorf("reserve: %w", user.ErrEmailTaken), 409, "email_taken"},
		{commands.ErrConflict, 409, "conflict"},
		{fmt.Errorf("eventlog: append: %w", client.ErrOutcomeUnknown), 504, "outcome_unknown"},
		{client.ErrUnavailable, 503, "unavailable"},
		{errors.New("boom"), 500, "internal"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			h := web.New(&fake{err: tc.err}, &fake{err: tc.err}, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
			status, body := do(t, h, "POST", "/users", `{"name":"Ada","email":"ada@example.com"}`)
			if status != tc.status || body["code"] != tc.code || body["status"] != float64(tc.status) {
				t.Errorf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if tc.status == 500 && body["detail"] != nil {
				t.Errorf("a 500 leaks its detail: %v", body)
			}
		})
	}
}

func TestBind(t *testing.T) {
	f := &fake{}
	h := web.New(f, f, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"CreateOK", "POST", "/users", `{"name":"Ada","email":"ada@example.com"}`, 201},
		{"UnknownField", "POST", "/users", `{"name":"Ada","mail":"ada@example.com"}`, 400},
		{"NotJSON", "POST", "/users", `name=Ada`, 400},
		{"TwoObjects", "POST", "/users", `{"name":"Ada"}{}`, 400},
		{"PatchOK", "PATCH", "/users/u1", `{"email":"ada@l.org"}`, 200},
		{"DeleteOK", "DELETE", "/users/u1", ``, 200},
		{"GetOK", "GET", "/users/u1", ``, 200},
		{"ByEmailOK", "GET", "/users?email=ada@example.com", ``, 200},
		{"ByEmailMissing", "GET", "/users", ``, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := do(t, h, tc.method, tc.path, tc.body); status != tc.status {
				t.Errorf("got %d %v, want %d", status, body, tc.status)
			}
		})
	}
	// PATCH keeps absent fields nil (unchanged) and present ones set.
	do(t, h, "PATCH", "/users/u1", `{"email":"ada@l.org"}`)
	if u, ok := f.last.(user.UpdateUser); !ok || u.ID != "u1" || u.Name != nil || u.Email == nil || *u.Email != "ada@l.org" {
		t.Errorf("PATCH bound %#v", f.last)
	}
}
