// Package keystore keeps eventlog's API keys (auth.KeyStore) in the
// Cassandra keyspace's api_keys table (schema/migrations/0005_keys.cql):
// one row per key name, with the token's SHA-256, never the token.
// Creation is a conditional insert, so a name is taken once on every
// instance; a create whose outcome the driver could not tell is settled
// by a SERIAL read of the row, and is log.ErrOutcomeUnknown when that
// read cannot find it.
package keystore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/dbclock"
	"github.com/eventlog/eventlog/internal/log"
)

const (
	// schema/migrations/0005_keys.cql: api_keys.
	cqlCreate  = `INSERT INTO api_keys (name, token_hash, scopes, created, expires, rate_limit) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`
	cqlList    = `SELECT name, token_hash, scopes, created, expires, revoked, rate_limit FROM api_keys`
	cqlRead    = `SELECT token_hash, revoked FROM api_keys WHERE name = ?`
	cqlRevoke  = `UPDATE api_keys SET revoked = ? WHERE name = ? IF EXISTS`
	maxListLen = 100_000
)

// Store is an auth.KeyStore on a Cassandra session whose keyspace holds
// the api_keys table.
type Store struct {
	session *gocql.Session
	serial  gocql.Consistency
	timeout time.Duration
}

var (
	_ auth.KeyStore = (*Store)(nil)
	_ auth.Clock    = (*Store)(nil)
)

// New returns a key store on session. serial is the serial consistency
// of the session's conditional writes (LOCAL_SERIAL or SERIAL), used to
// settle unknown outcomes; timeout bounds each query.
func New(session *gocql.Session, serial string, timeout time.Duration) (*Store, error) {
	s := &Store{session: session, timeout: timeout}
	switch strings.ToUpper(serial) { // as the store's options take it
	case "SERIAL":
		s.serial = gocql.Serial
	case "LOCAL_SERIAL", "":
		s.serial = gocql.LocalSerial
	default:
		return nil, fmt.Errorf("serial consistency %q: want SERIAL or LOCAL_SERIAL", serial)
	}
	if s.timeout <= 0 {
		s.timeout = 10 * time.Second
	}
	return s, nil
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// unavailable wraps a driver error; its text is logged by callers, never
// sent to clients.
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %v", op, log.ErrUnavailable, err)
}

// CreateKey implements auth.KeyStore.
func (s *Store) CreateKey(ctx context.Context, k auth.Key) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var expires *time.Time
	if !k.Expires.IsZero() {
		expires = &k.Expires
	}
	applied, err := s.session.Query(cqlCreate, k.Name, k.Hash, k.ScopeStrings(), k.Created, expires, k.RateLimit).
		WithContext(ctx).MapScanCAS(map[string]any{})
	if err == nil && applied {
		return nil
	}
	if err != nil {
		// Unavailable when no replica can have seen it, else the outcome
		// is unknown until the SERIAL read below finds the row.
		if err = cql.CASErr("create key", err); errors.Is(err, log.ErrUnavailable) {
			return err
		}
	}
	// Lost to another key of the name, or an unknown outcome: a SERIAL
	// read tells whether the row is ours (a retry of a create that
	// succeeded is ours too, by its hash).
	var hash []byte
	var revoked *time.Time
	rerr := s.session.Query(cqlRead, k.Name).WithContext(ctx).Consistency(s.serial).Scan(&hash, &revoked)
	switch {
	case rerr == nil && slices.Equal(hash, k.Hash):
		return nil
	case rerr == nil:
		return fmt.Errorf("key %s: %w", k.Name, auth.ErrKeyExists)
	case err != nil:
		// No row, or the read failed too: the create may still apply
		// (a SERIAL read does not stop a proposal its coordinator still
		// holds). Unavailable would say nothing was written, and a
		// client's retry, answered key_exists once it applied, would
		// read as final: the key made with a token nobody was shown.
		return err
	case errors.Is(rerr, gocql.ErrNotFound):
		return unavailable("create key", errors.New("not applied, and no row"))
	}
	return unavailable("create key: settle", rerr)
}

// Keys implements auth.KeyStore.
func (s *Store) Keys(ctx context.Context) ([]auth.Key, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	iter := s.session.Query(cqlList).WithContext(ctx).Idempotent(true).Iter()
	var (
		out              []auth.Key
		name             string
		hash             []byte
		scopes           []string
		created          time.Time
		expires, revoked *time.Time
		rate             *float64
	)
	for iter.Scan(&name, &hash, &scopes, &created, &expires, &revoked, &rate) {
		k := auth.Key{Name: name, Hash: slices.Clone(hash), Created: created.UTC()}
		if rate != nil {
			k.RateLimit = *rate
		}
		if expires != nil {
			k.Expires = expires.UTC()
		}
		if revoked != nil {
			k.Revoked = revoked.UTC()
		}
		for _, sc := range scopes {
			// A scope this binary cannot parse (written by a newer one) is
			// dropped: the key may do less, never more.
			if p, err := auth.ParseScope(sc); err == nil {
				k.Scopes = append(k.Scopes, p)
			}
		}
		out = append(out, k)
		if len(out) > maxListLen {
			iter.Close()
			return nil, fmt.Errorf("more than %d api keys", maxListLen)
		}
		expires, revoked, scopes, rate = nil, nil, nil, nil
	}
	if err := iter.Close(); err != nil {
		return nil, unavailable("list keys", err)
	}
	slices.SortFunc(out, func(a, b auth.Key) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// RevokeKey implements auth.KeyStore.
func (s *Store) RevokeKey(ctx context.Context, name string, at time.Time) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var (
		hash    []byte
		revoked *time.Time
	)
	err := s.session.Query(cqlRead, name).WithContext(ctx).Consistency(s.serial).Scan(&hash, &revoked)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return fmt.Errorf("key %s: %w", name, auth.ErrKeyNotFound)
	case err != nil:
		return unavailable("read key", err)
	case revoked != nil:
		return nil
	}
	// Setting the time again is harmless, so a lost answer is retried.
	for attempt := 0; ; attempt++ {
		applied, err := s.session.Query(cqlRevoke, at.UTC().Truncate(time.Millisecond), name).
			WithContext(ctx).MapScanCAS(map[string]any{})
		switch {
		case err == nil && applied:
			return nil
		case err == nil:
			return fmt.Errorf("key %s: %w", name, auth.ErrKeyNotFound)
		case attempt == 2 || ctx.Err() != nil:
			return unavailable("revoke key", err)
		}
	}
}

// Now implements auth.Clock: the coordinating Cassandra node's clock (to
// the millisecond). Cassandra's own last-write-wins needs its nodes'
// clocks in step, which server instances' clocks need not be.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	t, err := dbclock.Read(ctx, s.session)
	if err != nil {
		return time.Time{}, unavailable("read the time", err)
	}
	return t, nil
}
