package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// keyContextKey holds the request's *auth.Key in the Echo context.
const keyContextKey = "eventlog.key"

// Bearer challenges (RFC 6750) of 401 and 403 answers.
const (
	challengeNoToken = `Bearer realm="eventlog"`
	challengeInvalid = `Bearer realm="eventlog", error="invalid_token"`
	challengeScope   = `Bearer realm="eventlog", error="insufficient_scope"`
)

// secure sets the headers every response carries and refuses Host
// headers outside Config.AllowedHosts (a page on another origin reaching
// a loopback listener by DNS rebinding sends its own host name).
func (s *Server) secure(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		if s.allowedHosts != nil && !s.allowedHosts[normalHost(c.Request().Host)] {
			return newProblem(http.StatusMisdirectedRequest, CodeInvalidHost,
				"the Host header names no host this server answers for (see --allowed-hosts)")
		}
		return next(c)
	}
}

// HostGuard serves next behind the checks secure makes for the API: every
// response says nosniff and no-store, and a request whose Host is not one
// of hosts (when hosts is not empty) is 421 invalid_host. For the
// listeners served outside the API (metrics, pprof).
func HostGuard(next http.Handler, hosts []string) http.Handler {
	var allowed map[string]bool
	if len(hosts) > 0 {
		allowed = make(map[string]bool, len(hosts))
		for _, h := range hosts {
			allowed[normalHost(h)] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		if allowed != nil && !allowed[normalHost(r.Host)] {
			_ = writeProblem(w, newProblem(http.StatusMisdirectedRequest, CodeInvalidHost,
				"the Host header names no host this server answers for (see --allowed-hosts)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// normalHost is a Host header's host name, lower case, without port or
// IPv6 brackets.
func normalHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}

// authenticate requires a valid API key on every route but the health
// probes and the console's files when Config.Auth is set, and keeps it in the context for the
// handlers' scope checks (allow).
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if s.cfg.Auth == nil {
			return next(c)
		}
		switch c.RouteInfo().Path {
		case "/healthz", "/readyz", "/ui", "/ui/", "/ui/:asset":
			// Probes, and the console's files (no data in them).
			return next(c)
		case forwardPath:
			// Signed by an instance (checked by the handler), and each
			// append it carries is authorised with its own client's key.
			return next(c)
		}
		k, err := s.cfg.Auth.Authenticate(c.Request().Context(), c.Request().Header.Get(echo.HeaderAuthorization))
		switch {
		case err == nil:
		case errors.Is(err, auth.ErrNoCredentials):
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, challengeNoToken)
			return err
		case errors.Is(err, auth.ErrInvalidToken):
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, challengeInvalid)
			return err
		default:
			return err
		}
		c.Set(keyContextKey, k)
		// Kept in the request's context for Forwarder: an append forwarded
		// to the shard's owner is authorised there with the same key.
		r := c.Request()
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), bearerKey{}, r.Header.Get(echo.HeaderAuthorization))))
		return next(c)
	}
}

// bearerKey holds the request's Authorization value in its context.
type bearerKey struct{}

// keyOf is the request's API key; nil when authentication is off.
func keyOf(c *echo.Context) *auth.Key {
	k, _ := c.Get(keyContextKey).(*auth.Key)
	return k
}

// principal names who made a request, for audit records.
func principal(c *echo.Context) string {
	if k := keyOf(c); k != nil {
		return "key:" + k.Name
	}
	return "anonymous (authentication off)"
}

// forbid answers 403 with the insufficient_scope challenge.
func forbid(c *echo.Context) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, challengeScope)
	return auth.ErrForbidden
}

// allow checks that the request's key may do action on the stream or
// group name: always when authentication is off. Handlers call it before
// they read a body or ask the store anything, so a refused request writes
// nothing and learns nothing (a stream outside the key's scopes is 403
// whether or not it exists).
func (s *Server) allow(c *echo.Context, action auth.Action, name string) error {
	if s.permits(c, action, name) {
		return nil
	}
	return forbid(c)
}

// permits reports whether the request's key may do action on name (allow
// without the answer's challenge header: for a bulk line).
func (s *Server) permits(c *echo.Context, action auth.Action, name string) bool {
	if s.cfg.Auth == nil {
		return true
	}
	k := keyOf(c)
	return k != nil && k.Allows(action, name)
}

// allowFeed checks that the request's key may read feed.
func (s *Server) allowFeed(c *echo.Context, feed log.Feed) error {
	if s.cfg.Auth == nil {
		return nil
	}
	if k := keyOf(c); k != nil && k.CanReadFeed(feed) {
		return nil
	}
	return forbid(c)
}

// keyStillAccepted reports whether the key a bulk append began with is
// still accepted: a revocation or expiry takes effect within the
// documented delay on a request under way too, not only on new ones (live
// subscriptions: whileKeyValid). Asked of the authenticator's copy of the
// keys (no store read for a known key).
func (s *Server) keyStillAccepted(c *echo.Context) bool {
	if s.cfg.Auth == nil || keyOf(c) == nil {
		return true
	}
	r := c.Request()
	if _, err := s.cfg.Auth.Authenticate(r.Context(), r.Header.Get(echo.HeaderAuthorization)); err != nil {
		s.log.InfoContext(r.Context(), "request ended: its key is no longer accepted", "key", keyOf(c).Name, "error", err)
		return false
	}
	return true
}

// requireAdmin is route middleware for the admin routes and /metrics.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if err := s.allow(c, auth.ActionAdmin, ""); err != nil {
			return err
		}
		return next(c)
	}
}
