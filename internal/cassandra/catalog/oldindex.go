package catalog

import (
	"context"
	"errors"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
)

const (
	// schema/migrations/0008_event_id_commits.cql: keyspace_config's
	// created_version (0001_initial.cql: keyspace_config).
	cqlCreatedVersion = `SELECT created_version FROM keyspace_config WHERE id = 0`
	// schema/migrations/0001_initial.cql: schema_migrations.
	cqlApplied0008 = `SELECT applied_at FROM schema_migrations WHERE version = 8`
)

// DrainMargin is how long after migration 0008 was applied a server
// before it may still write event_index rows for ids that are not
// UUIDv7: the rolling upgrade's drain (the first instance of the new
// binary started, the older ones handing it their shards, an older
// ex-owner's last fills), and the migrator's clock, which wrote the
// time, being behind Cassandra's. Those rows expire (untimed TTL) after
// it, so past it a lookup of such an id no longer reads event_index
// (OldIndex.skip).
const DrainMargin = 24 * time.Hour

// OldIndex is what a keyspace's event_index (written by servers before
// migration 0008, read by later ones) may still hold, as read when a
// store opens (ReadOldIndex). The zero value is the conservative one:
// event_index is read for every lookup.
type OldIndex struct {
	// Unwritten: the keyspace was created at schema version 8 or later,
	// and no server ever wrote event_index.
	Unwritten bool
	// Migrated is when 0008 was applied (by the migrator's clock; zero:
	// unknown). Rows of ids that are not UUIDv7 expire within the untimed
	// TTL of their fill, so once Cassandra's clock is past Migrated plus
	// that TTL and DrainMargin, event_index holds none for a lookup to
	// find.
	Migrated time.Time
}

// ReadOldIndex reads what the keyspace of session records about
// event_index: the version its layout row was written at, and when
// migration 0008 was applied. On an error it returns the zero OldIndex
// too (read event_index always), which the caller may use.
func ReadOldIndex(ctx context.Context, session *gocql.Session) (OldIndex, error) {
	var version *int
	err := session.Query(cqlCreatedVersion).WithContext(ctx).Idempotent(true).Scan(&version)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return OldIndex{}, nil // no layout: the store refuses to open anyway
	case err != nil:
		return OldIndex{}, cql.ReadErr("read keyspace created_version", err)
	case version != nil && *version >= 8:
		return OldIndex{Unwritten: true}, nil
	}
	var at time.Time
	err = session.Query(cqlApplied0008).WithContext(ctx).Idempotent(true).Scan(&at)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return OldIndex{}, nil
	case err != nil:
		return OldIndex{}, cql.ReadErr("read when migration 0008 was applied", err)
	}
	return OldIndex{Migrated: at}, nil
}

// readOld reports whether a lookup of an id (timed: a UUIDv7) reads
// event_index too, now being Cassandra's clock. A UUIDv7 id's rows there
// never expire.
func (c *Catalog) readOld(timed bool, now time.Time) bool {
	o := c.o.OldIndex
	switch {
	case o.Unwritten:
		return false
	case timed || o.Migrated.IsZero():
		return true
	}
	return !now.After(o.Migrated.Add(time.Duration(c.untimedTTL)*time.Second + DrainMargin))
}
