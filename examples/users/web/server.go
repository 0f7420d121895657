package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/eventlog/eventlog/examples/users/commands"
	"github.com/eventlog/eventlog/examples/users/user"
)

// Commands is the write side (commands.Handler).
type Commands interface {
	Handle(ctx context.Context, cmd user.Command) (commands.Result, error)
}

// Queries is the read side (readmodel.Store). Get returns deleted users
// too (State.Deleted); both return user.ErrNotFound.
type Queries interface {
	Get(ctx context.Context, id string) (user.State, error)
	ByEmail(ctx context.Context, email string) (user.State, error)
}

// maxBody bounds a command body: a name and an email.
const maxBody = 16 << 10

// New returns the API's handler. commandTimeout bounds each command.
func New(cmds Commands, queries Queries, commandTimeout time.Duration, log *slog.Logger) http.Handler {
	s := &server{cmds: cmds, queries: queries, timeout: commandTimeout, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /users", s.create)
	mux.HandleFunc("PATCH /users/{id}", s.update)
	mux.HandleFunc("DELETE /users/{id}", s.delete)
	mux.HandleFunc("GET /users/{id}", s.get)
	mux.HandleFunc("GET /users", s.byEmail)
	return mux
}

type server struct {
	cmds    Commands
	queries Queries
	timeout time.Duration
	log     *slog.Logger
}

// userJSON is a user as the queries answer it.
type userJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// commandJSON is a command's answer.
type commandJSON struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	Changed bool   `json:"changed"`
}

func (s *server) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := bind(w, r, &body); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.handle(w, r, http.StatusCreated, user.CreateUser{Name: body.Name, Email: body.Email})
}

func (s *server) update(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name  *string `json:"name"`
		Email *string `json:"email"`
	}
	if err := bind(w, r, &body); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.handle(w, r, http.StatusOK, user.UpdateUser{ID: r.PathValue("id"), Name: body.Name, Email: body.Email})
}

func (s *server) delete(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, http.StatusOK, user.DeleteUser{ID: r.PathValue("id")})
}

// handle runs cmd and answers with the user's id and version.
func (s *server) handle(w http.ResponseWriter, r *http.Request, status int, cmd user.Command) {
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	res, err := s.cmds.Handle(ctx, cmd)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", "/users/"+res.ID)
	}
	writeJSON(w, status, commandJSON{ID: res.ID, Version: res.Version, Changed: res.Changed})
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	st, err := s.queries.Get(r.Context(), r.PathValue("id"))
	if err == nil && st.Deleted {
		err = user.ErrDeleted
	}
	s.answer(w, r, st, err)
}

func (s *server) byEmail(w http.ResponseWriter, r *http.Request) {
	email := r.URL.Query().Get("email")
	if email == "" {
		writeError(w, r, s.log, &errBadRequest{"give ?email=<address>"})
		return
	}
	st, err := s.queries.ByEmail(r.Context(), email)
	s.answer(w, r, st, err)
}

func (s *server) answer(w http.ResponseWriter, r *http.Request, st user.State, err error) {
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, userJSON{ID: st.ID, Name: st.Name, Email: st.Email, Version: st.Version,
		CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt})
}

// bind decodes a JSON body into v, strictly: unknown fields and trailing
// data are errors, so a typo ("mail") is not silently ignored.
func bind(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &errBadRequest{fmt.Sprintf("body: %v", err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &errBadRequest{"body: one JSON object only"}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
