package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/commands"
	"github.com/eventlog/eventlog/examples/users/user"
)

// problem is an RFC 9457 problem details object with a stable Code, the
// shape eventlog's own errors have.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
	// Field names the request field at fault, for invalid_command.
	Field string `json:"field,omitempty"`
}

// errBadRequest wraps a request that could not be read at all.
type errBadRequest struct{ msg string }

func (e *errBadRequest) Error() string { return e.msg }

// problemOf is the one table from errors to HTTP answers.
func problemOf(err error) problem {
	var (
		inv *user.InvalidError
		bad *errBadRequest
	)
	p := func(status int, code string) problem {
		return problem{Status: status, Code: code, Detail: err.Error()}
	}
	switch {
	case errors.As(err, &bad):
		return p(http.StatusBadRequest, "invalid_request")
	case errors.As(err, &inv):
		pr := p(http.StatusBadRequest, "invalid_command")
		pr.Field = inv.Field
		return pr
	case errors.Is(err, user.ErrNotFound):
		return p(http.StatusNotFound, "user_not_found")
	case errors.Is(err, user.ErrDeleted):
		return p(http.StatusGone, "user_deleted")
	case errors.Is(err, user.ErrExists):
		return p(http.StatusConflict, "user_exists")
	case errors.Is(err, user.ErrEmailTaken):
		return p(http.StatusConflict, "email_taken")
	case errors.Is(err, commands.ErrConflict):
		return p(http.StatusConflict, "conflict")
	case errors.Is(err, client.ErrOutcomeUnknown):
		// The events may be stored; the read model will tell.
		return p(http.StatusGatewayTimeout, "outcome_unknown")
	case errors.Is(err, client.ErrUnavailable):
		return p(http.StatusServiceUnavailable, "unavailable")
	}
	return problem{Status: http.StatusInternalServerError, Code: "internal"}
}

// writeError answers err as problem+json, logging the unexpected ones.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	pr := problemOf(err)
	if pr.Status == http.StatusInternalServerError {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	pr.Type = "urn:users-example:problem:" + pr.Code
	pr.Title = http.StatusText(pr.Status)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(pr.Status)
	json.NewEncoder(w).Encode(pr)
}
