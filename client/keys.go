package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// APIKey is an API key as the server describes it (never its token or
// the token's hash).
type APIKey struct {
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt and RevokedAt are zero when the key has none, and left
	// out of its JSON then, as the server leaves them out.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// RateLimit is the key's requests a second; 0: the server's.
	RateLimit float64 `json:"rate_limit"`
	// Status is "active", "expired" or "revoked".
	Status string `json:"status"`
}

// NewKey is what CreateKey makes.
type NewKey struct {
	Name   string
	Scopes []string // "read:user-*", "append:*", "admin", …
	// Expires is the key's lifetime; 0: it does not expire. A negative
	// one is sent, so the server refuses it (invalid_key).
	Expires time.Duration
	// RateLimit is its requests a second; 0: the server's. A negative
	// one is sent, so the server refuses it (invalid_key).
	RateLimit float64
}

// CreateKey makes an API key (the client's key needs the admin scope)
// and returns it with its token, which the server shows only this once.
func (c *Client) CreateKey(ctx context.Context, k NewKey) (APIKey, string, error) {
	// Anything but the zero value goes to the server, which refuses a
	// negative one: dropping it would make a key that never expires.
	body := map[string]any{"name": k.Name, "scopes": k.Scopes}
	if k.Expires != 0 {
		body["expires"] = k.Expires.String()
	}
	if k.RateLimit != 0 {
		body["rate_limit"] = k.RateLimit
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return APIKey{}, "", err
	}
	var out struct {
		APIKey
		Token string `json:"token"`
	}
	r := &request{method: http.MethodPost, path: "/v1/admin/keys", body: raw, contentType: mediaJSON, write: true}
	if err := c.call(ctx, r, &out); err != nil {
		return APIKey{}, "", fmt.Errorf("eventlog: create key %s: %w", k.Name, err)
	}
	return out.APIKey, out.Token, nil
}

// ListKeys returns every API key (the client's key needs the admin
// scope).
func (c *Client) ListKeys(ctx context.Context) ([]APIKey, error) {
	var out struct {
		Keys []APIKey `json:"keys"`
	}
	if err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/admin/keys"}, &out); err != nil {
		return nil, fmt.Errorf("eventlog: list keys: %w", err)
	}
	return out.Keys, nil
}

// RevokeKey revokes the API key name (the client's key needs the admin
// scope): every instance refuses it within the server's documented delay.
func (c *Client) RevokeKey(ctx context.Context, name string) error {
	r := &request{method: http.MethodDelete, path: "/v1/admin/keys/" + url.PathEscape(name), write: true}
	if err := c.call(ctx, r, nil); err != nil {
		return fmt.Errorf("eventlog: revoke key %s: %w", name, err)
	}
	return nil
}
