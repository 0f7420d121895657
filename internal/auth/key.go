package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

var (
	// ErrNoCredentials: the request carries no Authorization header.
	ErrNoCredentials = errors.New("no bearer token")
	// ErrInvalidToken: the Authorization header is malformed, or its token
	// is unknown, expired or revoked (deliberately one error: the answer
	// tells a caller nothing about which).
	ErrInvalidToken = errors.New("invalid, expired or revoked token")
	// ErrForbidden: the key is valid but has no scope for the request.
	ErrForbidden = errors.New("the key's scopes do not allow this request")
	// ErrKeysUnavailable: the keys could not be read recently enough to
	// honour revocations (MaxStale); no token is accepted meanwhile. It
	// matches log.ErrUnavailable.
	ErrKeysUnavailable = fmt.Errorf("api keys not readable: %w", log.ErrUnavailable)
	// ErrKeyExists: a key of that name exists (revoked keys keep their
	// name).
	ErrKeyExists = errors.New("a key of that name exists")
	// ErrKeyNotFound: no key of that name.
	ErrKeyNotFound = errors.New("key not found")
)

// CodeInvalidKey is the validation code of a bad key name, scope or
// expiry.
const CodeInvalidKey = "invalid_key"

// MaxKeyNameLen bounds key names.
const MaxKeyNameLen = 100

// Key is an API key. Its token is never stored: Hash is its SHA-256.
type Key struct {
	Name    string
	Scopes  []Scope
	Hash    []byte    // HashToken of the token
	Created time.Time // UTC
	Expires time.Time // zero: never
	Revoked time.Time // zero: not revoked
	// RateLimit is the key's requests per second; 0: the server's default.
	RateLimit float64
}

// Active reports whether the key is neither revoked nor expired at now.
func (k *Key) Active(now time.Time) bool {
	return k.Revoked.IsZero() && (k.Expires.IsZero() || now.Before(k.Expires))
}

// Allows reports whether k may do action on the stream or group name.
func (k *Key) Allows(action Action, name string) bool {
	for _, s := range k.Scopes {
		if s.Action == ActionAdmin || s.Action == action && s.Pattern.Match(name) {
			return true
		}
	}
	return false
}

// coversPrefix reports whether k may do action on every name starting
// with prefix.
func (k *Key) coversPrefix(action Action, prefix string) bool {
	for _, s := range k.Scopes {
		if s.Action == ActionAdmin || s.Action == action && s.Pattern.CoversPrefix(prefix) {
			return true
		}
	}
	return false
}

// CanReadFeed reports whether k may read feed: the all and type feeds
// hold any stream's events, so they need read:*; a category feed <c>
// holds the streams <c> and <c>-…, so it needs read on both (read:<c>*,
// or read:<c>-* with read:<c>).
func (k *Key) CanReadFeed(f log.Feed) bool {
	switch f.Kind {
	case log.FeedCategory:
		return k.coversPrefix(ActionRead, f.Name+"-") && k.Allows(ActionRead, f.Name)
	case log.FeedAll, log.FeedType:
		return k.coversPrefix(ActionRead, "")
	}
	return false
}

// IsAdmin reports whether k has the admin scope.
func (k *Key) IsAdmin() bool { return k.Allows(ActionAdmin, "") }

// ScopeStrings are k's scopes in text form.
func (k *Key) ScopeStrings() []string {
	out := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		out[i] = s.String()
	}
	return out
}

// ValidateKeyName checks a key name: 1-100 characters from
// [A-Za-z0-9_.:@+=-], starting with a letter or digit.
func ValidateKeyName(name string) error {
	if len(name) > MaxKeyNameLen {
		return invalidKey("key name must be 1-%d characters", MaxKeyNameLen)
	}
	if _, err := log.ParseStreamID(name); err != nil {
		return invalidKey("key name must be 1-%d characters from A-Z a-z 0-9 _ . : @ + = -, starting with a letter or digit", MaxKeyNameLen)
	}
	return nil
}

func invalidKey(format string, args ...any) error {
	return &log.ValidationError{Code: CodeInvalidKey, Message: fmt.Sprintf(format, args...)}
}

// NewKey validates a key request and makes the key and its token: name,
// scopes in text form, and a lifetime (0: no expiry). The token is
// returned once; only its hash is in the key.
func NewKey(name string, scopes []string, ttl time.Duration, now time.Time) (Key, string, error) {
	if err := ValidateKeyName(name); err != nil {
		return Key{}, "", err
	}
	sc, err := ParseScopes(scopes)
	if err != nil {
		return Key{}, "", invalidKey("%s", err.Error())
	}
	if ttl < 0 {
		return Key{}, "", invalidKey("expiry must be a positive duration")
	}
	token, hash, err := NewToken()
	if err != nil {
		return Key{}, "", err
	}
	k := Key{Name: name, Scopes: sc, Hash: hash[:], Created: now.UTC().Truncate(time.Millisecond)}
	if ttl > 0 {
		k.Expires = k.Created.Add(ttl)
	}
	return k, token, nil
}

// ParseScopeList parses scopes separated by commas or spaces, as a flag
// or JSON string may carry them.
func ParseScopeList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// KeyStore stores API keys. Implementations return log.ErrUnavailable
// (wrapped) when the store cannot be reached.
type KeyStore interface {
	// CreateKey stores k unless a key of its name exists (ErrKeyExists).
	// log.ErrOutcomeUnknown (wrapped): k may or may not be stored; a
	// retry with the same k (its hash) tells.
	CreateKey(ctx context.Context, k Key) error
	// Keys returns every key, revoked and expired ones included.
	Keys(ctx context.Context) ([]Key, error)
	// RevokeKey marks the named key revoked at at (ErrKeyNotFound if there
	// is none). Revoking a revoked key keeps its first revocation time.
	RevokeKey(ctx context.Context, name string, at time.Time) error
}

// Clock is a KeyStore that tells the time by its database's clock. A
// key's expiry is written as a moment; judged by each server instance's
// own clock, instances whose clocks differ by hours would end a key hours
// apart. Judged by the store's clock (StoreNow, Authenticator.Now) it
// ends on every instance at once, whatever their clocks say.
type Clock interface {
	Now(ctx context.Context) (time.Time, error)
}

// StoreNow is ks's time when it is a Clock and answers, else local().
func StoreNow(ctx context.Context, ks KeyStore, local func() time.Time) time.Time {
	if c, ok := ks.(Clock); ok {
		if t, err := c.Now(ctx); err == nil {
			return t
		}
	}
	return local()
}
