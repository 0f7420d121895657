package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// maxAdminBody bounds an admin request body.
const maxAdminBody = 64 << 10

// keyJSON is a key as the admin routes show it: never its token or hash.
type keyJSON struct {
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt string   `json:"expires_at,omitempty"`
	RevokedAt string   `json:"revoked_at,omitempty"`
	RateLimit float64  `json:"rate_limit,omitempty"` // requests a second; absent: the server's
	Status    string   `json:"status"`               // active, expired or revoked
}

func newKeyJSON(k *auth.Key, now time.Time) keyJSON {
	out := keyJSON{Name: k.Name, Scopes: k.ScopeStrings(), CreatedAt: formatTime(k.Created),
		ExpiresAt: optionalTime(k.Expires), RevokedAt: optionalTime(k.Revoked), RateLimit: k.RateLimit, Status: "active"}
	switch {
	case !k.Revoked.IsZero():
		out.Status = "revoked"
	case !k.Active(now):
		out.Status = "expired"
	}
	return out
}

// keyStore is the admin routes' store: 403 authentication_disabled on a
// server that does not authenticate, 501 without a store. Without
// authentication anyone who reaches the server would pass the admin
// check: keys made then would be valid the moment authentication is
// turned on (a way back in), and those made for that day could be listed
// or revoked. Keys are made there with `server keys`, against Cassandra.
func (s *Server) keyStore() (auth.KeyStore, error) {
	if s.cfg.Auth == nil {
		return nil, newProblem(http.StatusForbidden, CodeAuthenticationDisabled,
			"this server does not authenticate, so it does not manage API keys: make them with `server keys create` (against Cassandra), then start the server with authentication")
	}
	if s.cfg.Keys == nil {
		return nil, newProblem(http.StatusNotImplemented, CodeNotImplemented, "this server has no key store")
	}
	return s.cfg.Keys, nil
}

// keyNow is the time keys are created, listed and revoked by: the key
// store's clock (auth.Clock), which every instance judges expiry by.
func (s *Server) keyNow(ctx context.Context, ks auth.KeyStore) time.Time {
	if s.cfg.Auth != nil && s.cfg.Auth.Store() == ks {
		return s.cfg.Auth.Now()
	}
	return auth.StoreNow(ctx, ks, time.Now)
}

// keysChanged makes a key change take effect on this instance at once
// (other instances follow within their refresh).
func (s *Server) keysChanged(ctx context.Context) {
	if s.cfg.Auth == nil {
		return
	}
	if err := s.cfg.Auth.Reload(ctx); err != nil {
		s.log.WarnContext(ctx, "reload api keys after a change", "error", err)
	}
}

// createKey serves POST /v1/admin/keys: {"name", "scopes": [...],
// "expires": "720h" (optional), "rate_limit": 50 (optional)}. 201 with the key and its token, which is
// shown this once and stored only as a hash.
func (s *Server) createKey(c *echo.Context) error {
	ks, err := s.keyStore()
	if err != nil {
		return err
	}
	if err := requireMediaType(c.Request(), echo.MIMEApplicationJSON); err != nil {
		return err
	}
	var body struct {
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		Expires   string   `json:"expires"`
		RateLimit float64  `json:"rate_limit"`
	}
	if err := decodeStrict(c.Request().Body, &body); err != nil {
		return err
	}
	var ttl time.Duration
	if body.Expires != "" {
		if ttl, err = time.ParseDuration(body.Expires); err != nil || ttl <= 0 {
			return &log.ValidationError{Code: auth.CodeInvalidKey, Message: `"expires" must be a positive duration such as "720h"`}
		}
	}
	now := s.keyNow(c.Request().Context(), ks)
	k, token, err := auth.NewKey(body.Name, body.Scopes, ttl, now)
	if err != nil {
		return err
	}
	if body.RateLimit < 0 {
		return &log.ValidationError{Code: auth.CodeInvalidKey, Message: `"rate_limit" must be 0 (the server's) or a positive number of requests a second`}
	}
	k.RateLimit = body.RateLimit
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), s.cfg.AppendTimeout)
	defer cancel()
	if err := ks.CreateKey(ctx, k); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "audit", "action", "key_created", "key", k.Name, "scopes", k.ScopeStrings(),
		"expires", optionalTime(k.Expires), "by", principal(c))
	s.keysChanged(ctx)
	type created struct {
		keyJSON
		Token string `json:"token"`
	}
	return c.JSON(http.StatusCreated, created{keyJSON: newKeyJSON(&k, now), Token: token})
}

// listKeys serves GET /v1/admin/keys: every key, without tokens or hashes.
func (s *Server) listKeys(c *echo.Context) error {
	ks, err := s.keyStore()
	if err != nil {
		return err
	}
	keys, err := ks.Keys(c.Request().Context())
	if err != nil {
		return err
	}
	now := s.keyNow(c.Request().Context(), ks)
	out := make([]keyJSON, len(keys))
	for i := range keys {
		out[i] = newKeyJSON(&keys[i], now)
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

// revokeKey serves DELETE /v1/admin/keys/{name}: 204; the key is refused
// by every instance within the documented delay (auth.Options.MaxStale).
func (s *Server) revokeKey(c *echo.Context) error {
	ks, err := s.keyStore()
	if err != nil {
		return err
	}
	name := c.Param("name")
	if err := auth.ValidateKeyName(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), s.cfg.AppendTimeout)
	defer cancel()
	if err := ks.RevokeKey(ctx, name, s.keyNow(ctx, ks)); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "audit", "action", "key_revoked", "key", name, "by", principal(c))
	s.keysChanged(ctx)
	return c.NoContent(http.StatusNoContent)
}
