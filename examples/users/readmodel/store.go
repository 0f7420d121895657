package readmodel

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/examples/users/user"
)

// schema.cql: users_by_id.
const (
	cqlGet = `SELECT name, email, email_version, deleted, created_at, updated_at, version FROM users_by_id WHERE id = ?`
	// cqlInsert creates a row the projection has not seen before.
	cqlInsert = `INSERT INTO users_by_id (id, name, email, email_version, deleted, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`
	// cqlUpdate moves a row on from the version it was read at.
	cqlUpdate = `UPDATE users_by_id SET name = ?, email = ?, email_version = ?, deleted = ?, created_at = ?, updated_at = ?, version = ? WHERE id = ? IF version = ?`
)

// schema.cql: users_by_email.
const (
	cqlIndexGet    = `SELECT id FROM users_by_email WHERE email = ?`
	cqlIndexInsert = `INSERT INTO users_by_email (email, id, email_version) VALUES (?, ?, ?) IF NOT EXISTS`
	cqlIndexUpdate = `UPDATE users_by_email SET id = ?, email_version = ? WHERE email = ? IF email_version < ?`
	cqlIndexDelete = `DELETE FROM users_by_email WHERE email = ? IF email_version <= ?`
)

//go:embed schema.cql
var schemaCQL string

// Store is the read model in Cassandra. It is safe for concurrent use.
type Store struct {
	session *gocql.Session
}

// Open creates the keyspace and tables if they are missing and connects.
func Open(ctx context.Context, o Options) (*Store, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if err := migrate(ctx, o); err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	c, err := newCluster(o, o.Keyspace)
	if err != nil {
		return nil, err
	}
	s, err := c.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("read model: connect: %w", err)
	}
	return &Store{session: s}, nil
}

// Close ends the session.
func (s *Store) Close() { s.session.Close() }

// newCluster is the one place sessions are configured: token-aware
// routing, explicit timeouts, quorum consistency, and driver retries only
// for idempotent statements (the compare-and-sets are not marked so).
func newCluster(o Options, keyspace string) (*gocql.ClusterConfig, error) {
	cons, err := o.consistency()
	if err != nil {
		return nil, err
	}
	c := gocql.NewCluster(o.Hosts...)
	c.Keyspace = keyspace
	c.Consistency = cons
	c.SerialConsistency = gocql.LocalSerial
	c.Timeout = o.Timeout
	c.ConnectTimeout = o.Timeout
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	c.RetryPolicy = &gocql.ExponentialBackoffRetryPolicy{NumRetries: 3, Min: 50 * time.Millisecond, Max: time.Second}
	return c, nil
}

// migrate applies schema.cql. The tables are created IF NOT EXISTS rather
// than through numbered migrations: an example's read model is rebuilt
// from the events (drop the keyspace, replay the feed), never migrated.
func migrate(ctx context.Context, o Options) error {
	c, err := newCluster(o, "")
	if err != nil {
		return err
	}
	c.Timeout = max(o.Timeout, 30*time.Second) // schema changes are slow
	s, err := c.CreateSession()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer s.Close()
	stmts := []string{fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}`,
		o.Keyspace, o.ReplicationFactor)}
	for _, st := range strings.Split(schemaCQL, ";") {
		var lines []string
		for _, l := range strings.Split(st, "\n") {
			if l, _, _ = strings.Cut(l, "--"); strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			stmts = append(stmts, strings.Replace(strings.Join(lines, "\n"), "IF NOT EXISTS ", "IF NOT EXISTS "+o.Keyspace+".", 1))
		}
	}
	for _, st := range stmts {
		if err := s.Query(st).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	return s.AwaitSchemaAgreement(ctx)
}

// Get returns user id as the projection last saw it (deleted users
// included: State.Deleted), or user.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (user.State, error) {
	st, err := s.get(ctx, id)
	if err == nil && !st.Exists() {
		err = user.ErrNotFound
	}
	return st, err
}

// ByEmail returns the user who holds email (normalised first), or
// user.ErrNotFound, also for a deleted user (the address is free).
func (s *Store) ByEmail(ctx context.Context, email string) (user.State, error) {
	email, err := user.NormalizeEmail(email)
	if err != nil {
		return user.State{}, user.ErrNotFound
	}
	var id string
	err = s.session.Query(cqlIndexGet, email).WithContext(ctx).Idempotent(true).Scan(&id)
	if errors.Is(err, gocql.ErrNotFound) {
		return user.State{}, user.ErrNotFound
	}
	if err != nil {
		return user.State{}, fmt.Errorf("read users_by_email: %w", err)
	}
	st, err := s.get(ctx, id)
	if err != nil {
		return user.State{}, err
	}
	// The index can trail or outlive the row (see the package comment):
	// the row decides.
	if !st.Exists() || st.Deleted || st.Email != email {
		return user.State{}, user.ErrNotFound
	}
	return st, nil
}

// get reads a row; a missing one is the zero State.
func (s *Store) get(ctx context.Context, id string) (user.State, error) {
	st := user.State{ID: id}
	var created, updated *time.Time
	err := s.session.Query(cqlGet, id).WithContext(ctx).Idempotent(true).
		Scan(&st.Name, &st.Email, &st.EmailVersion, &st.Deleted, &created, &updated, &st.Version)
	if errors.Is(err, gocql.ErrNotFound) {
		return user.State{}, nil
	}
	if err != nil {
		return user.State{}, fmt.Errorf("read users_by_id %s: %w", id, err)
	}
	if created != nil {
		st.CreatedAt = created.UTC()
	}
	if updated != nil {
		st.UpdatedAt = updated.UTC()
	}
	return st, nil
}

// commit writes next over the row read as prev, if the row is still at
// prev's version. false: it moved on meanwhile.
func (s *Store) commit(ctx context.Context, prev, next user.State) (bool, error) {
	var q *gocql.Query
	if !prev.Exists() {
		q = s.session.Query(cqlInsert, next.ID, next.Name, next.Email, next.EmailVersion, next.Deleted,
			timestamp(next.CreatedAt), timestamp(next.UpdatedAt), next.Version)
	} else {
		q = s.session.Query(cqlUpdate, next.Name, next.Email, next.EmailVersion, next.Deleted,
			timestamp(next.CreatedAt), timestamp(next.UpdatedAt), next.Version, next.ID, prev.Version)
	}
	applied, err := q.WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return false, fmt.Errorf("write users_by_id %s: %w", next.ID, err)
	}
	return applied, nil
}

// index points email at id, unless the entry holds a reservation at or
// above emailVersion (a later owner, or this one already).
func (s *Store) index(ctx context.Context, email, id string, emailVersion int64) error {
	for range 10 {
		applied, err := s.session.Query(cqlIndexInsert, email, id, emailVersion).WithContext(ctx).MapScanCAS(map[string]any{})
		if err != nil || applied {
			return wrap("insert users_by_email", err)
		}
		cur := map[string]any{}
		applied, err = s.session.Query(cqlIndexUpdate, id, emailVersion, email, emailVersion).WithContext(ctx).MapScanCAS(cur)
		if err != nil || applied {
			return wrap("update users_by_email", err)
		}
		if v, _ := cur["email_version"].(int64); v != 0 {
			return nil // at or above emailVersion: not ours to overwrite
		}
		// Deleted between the two writes: insert again.
	}
	return fmt.Errorf("index %s: the entry keeps changing", email)
}

// unindex removes email's entry if it holds a reservation at or below
// emailVersion (this owner's or an older one's).
func (s *Store) unindex(ctx context.Context, email string, emailVersion int64) error {
	_, err := s.session.Query(cqlIndexDelete, email, emailVersion).WithContext(ctx).MapScanCAS(map[string]any{})
	return wrap("delete users_by_email", err)
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// timestamp stores a zero time as null rather than year 1.
func timestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
