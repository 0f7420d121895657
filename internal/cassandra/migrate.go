package cassandra

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/schema"
)

const (
	// schema/migrations/0001_initial.cql: schema_migrations.
	cqlAppliedMigrations = `SELECT version, checksum FROM schema_migrations`
	cqlRecordMigration   = `INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`
	cqlTableExists       = `SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'schema_migrations'`
	cqlTableNamed        = `SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?`
	cqlPaxosVariant      = `SELECT value FROM system_views.settings WHERE name = 'paxos_variant'`
	cqlReplication       = `SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?`
	// schema/migrations/0001_initial.cql: keyspace_config;
	// 0008_event_id_commits.cql: its created_version.
	cqlWriteLayout = `INSERT INTO keyspace_config (id, shards, segment_rows, token_secret, created, created_version) VALUES (0, ?, ?, ?, ?, ?) IF NOT EXISTS`
	cqlReadShards  = `SELECT shards FROM keyspace_config WHERE id = 0`
)

// DefaultSegmentRows is the rows of one shard log segment unless
// Options.SegmentRows says otherwise: a segment of 1-event commits stays a
// few hundred KB, of 1 MiB commits at most ~1 GB.
const DefaultSegmentRows = 1000

// migration is one numbered file of schema/migrations.
type migration struct {
	version    int
	name       string
	checksum   string
	statements []string
}

// migrations parses the embedded migrations in order.
func migrations() ([]migration, error) {
	files, err := fs.Glob(schema.Migrations, "migrations/*.cql")
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var out []migration
	for _, f := range files {
		base := strings.TrimSuffix(path.Base(f), ".cql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != len(out)+1 {
			return nil, fmt.Errorf("migration %s: want NNNN_name.cql numbered from 1 without gaps", f)
		}
		body, err := fs.ReadFile(schema.Migrations, f)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		out = append(out, migration{version: v, name: name, checksum: hex.EncodeToString(sum[:8]), statements: splitCQL(string(body))})
	}
	return out, nil
}

// LatestSchemaVersion is the newest migration this binary carries.
func LatestSchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// splitCQL splits a CQL file into statements at lines holding only ";",
// dropping comment lines.
func splitCQL(body string) []string {
	var (
		out []string
		cur strings.Builder
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for _, line := range strings.Split(body, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == ";":
			flush()
		case strings.HasPrefix(t, "--") || t == "":
		default:
			cur.WriteString(line)
			cur.WriteByte('\n')
		}
	}
	flush()
	return out
}

// Migrate creates the keyspace if needed and applies the migrations it
// lacks, waiting for schema agreement after each statement. When nothing
// is missing (the usual restart) it only checks, on any node. Otherwise
// every statement of the run goes to one node, the cluster's node with
// the lowest host id (ddlHost), so migrators started together (several
// instances with serve --migrate) send their schema changes to the same
// node whatever their contact points, and that node applies them one at
// a time, each IF NOT EXISTS: concurrent DDL on different coordinators
// can create a table twice with different ids. While that node is down
// Migrate waits for it, then fails (log.ErrUnavailable) naming it.
func Migrate(ctx context.Context, o Options) error {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return err
	}
	repl, err := replicationCQL(o.Replication)
	if err != nil {
		return err
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	cluster, err := newCluster(&o, "")
	if err != nil {
		return err
	}
	cluster.Timeout = max(o.Timeout, 30*time.Second) // DDL waits for agreement
	session, err := cluster.CreateSession()
	if err != nil {
		return fmt.Errorf("connect to %v: %w: %v", o.Hosts, log.ErrUnavailable, err)
	}
	defer session.Close()

	missing, err := missingMigrations(ctx, session, o, ms, "")
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return writeLayout(ctx, session, o, "")
	}
	host, err := ddlHost(ctx, session, o.Logger)
	if err != nil {
		return err
	}
	ks := strings.NewReplacer("{{keyspace}}", o.Keyspace, "{{replication}}", repl).Replace(schema.Keyspace)
	for _, stmt := range splitCQL(ks) {
		if err := session.Query(stmt).SetHostID(host).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("create keyspace %s: %w", o.Keyspace, err)
		}
	}
	if err := agreeOn(ctx, session, host); err != nil {
		return fmt.Errorf("schema agreement: %w", err)
	}
	// Again on the schema node: another migrator may have gone further.
	missing, err = missingMigrations(ctx, session, o, ms, host)
	if err != nil {
		return err
	}
	for _, m := range missing {
		for _, stmt := range m.statements {
			stmt = qualify(stmt, o.Keyspace)
			if err := session.Query(stmt).SetHostID(host).WithContext(ctx).Exec(); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			if err := agreeOn(ctx, session, host); err != nil {
				return fmt.Errorf("migration %04d_%s: schema agreement: %w", m.version, m.name, err)
			}
		}
		rec := strings.Replace(cqlRecordMigration, "schema_migrations", o.Keyspace+".schema_migrations", 1)
		if err := session.Query(rec, m.version, m.name, m.checksum, time.Now()).SetHostID(host).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("record migration %04d: %w", m.version, err)
		}
		o.Logger.Info("schema migration applied", "keyspace", o.Keyspace, "version", m.version, "name", m.name)
	}
	return writeLayout(ctx, session, o, host)
}

// missingMigrations checks the keyspace (a missing one has nothing
// applied) as Migrate does before it changes anything, and returns the
// migrations of ms it lacks. host is the node to ask ("": any). A read
// that a replica refuses because it does not have the table yet (another
// migrator has just created it) is made again, up to 10 times, once the
// nodes agree (on the schema node's version when host is set, agreeOn;
// else as the driver sees them) and a second later (the driver's view of
// the nodes' schema versions can lag the replica's).
func missingMigrations(ctx context.Context, session *gocql.Session, o Options, ms []migration, host string) ([]migration, error) {
	for attempt := 1; ; attempt++ {
		missing, err := checkMigrations(ctx, session, o, ms, host)
		if err == nil || attempt == 10 || !schemaNotAgreed(err) {
			return missing, err
		}
		o.Logger.Debug("a replica does not know a table yet; reading again after schema agreement", "keyspace", o.Keyspace, "err", err)
		agree := session.AwaitSchemaAgreement
		if host != "" {
			agree = func(ctx context.Context) error { return agreeOn(ctx, session, host) }
		}
		if err := agree(ctx); err != nil {
			return nil, fmt.Errorf("schema agreement: %w", err)
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// schemaNotAgreed reports whether err is a read that failed because a
// replica does not know the table the coordinator read (Cassandra's
// INCOMPATIBLE_SCHEMA, reason 3), as while a new table spreads, or
// because the coordinator itself did not know it yet (a server error
// "java.lang.IllegalArgumentException: Unknown CF <id>", seen in CI's
// concurrent migrations on three nodes).
func schemaNotAgreed(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) && re.Code() == gocql.ErrCodeServer && strings.Contains(re.Message(), "Unknown CF") {
		return true
	}
	var rf *gocql.RequestErrReadFailure
	if !errors.As(err, &rf) {
		return false
	}
	for _, reason := range rf.ErrorMap {
		if reason == 3 {
			return true
		}
	}
	return strings.Contains(rf.Message(), "INCOMPATIBLE_SCHEMA")
}

// checkMigrations is one attempt of missingMigrations.
func checkMigrations(ctx context.Context, session *gocql.Session, o Options, ms []migration, host string) ([]migration, error) {
	if err := checkLayout(ctx, session, o.Keyspace, host); err != nil {
		return nil, err
	}
	applied, err := appliedVersions(ctx, session, o.Keyspace, host)
	if err != nil {
		return nil, err
	}
	if err := checkChecksums(ms, applied); err != nil {
		return nil, err
	}
	if err := newerError(applied, o.Keyspace); err != nil {
		return nil, err
	}
	if _, ok := applied[1]; ok {
		if err := checkShards(ctx, session, o, host); err != nil {
			return nil, err
		}
	}
	var missing []migration
	for _, m := range ms {
		if _, ok := applied[m.version]; !ok {
			missing = append(missing, m)
		}
	}
	return missing, nil
}

// writeLayout records the keyspace's fixed layout parameters once (shard
// count, segment rows, the feed token secret, and the schema version it
// was created at); a later Migrate asking for another shard count fails
// rather than silently keeping the old one. A keyspace upgraded from
// before 0008 keeps its row, without created_version: no server serves a
// keyspace without the row, so one written here at 8 or later means no
// server before 0008 (the last to write event_index) ever served it.
func writeLayout(ctx context.Context, session *gocql.Session, o Options, host string) error {
	shards, rows := o.Shards, o.SegmentRows
	if shards == 0 {
		shards = partition.DefaultShards
	}
	if rows == 0 {
		rows = DefaultSegmentRows
	}
	if shards < 1 || shards > partition.MaxShards {
		return fmt.Errorf("shards %d: want 1..%d", shards, partition.MaxShards)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	stmt := strings.Replace(cqlWriteLayout, "keyspace_config", o.Keyspace+".keyspace_config", 1)
	got := map[string]any{}
	applied, err := session.Query(stmt, shards, rows, secret, time.Now(), LatestSchemaVersion()).SetHostID(host).WithContext(ctx).MapScanCAS(got)
	if err != nil {
		return fmt.Errorf("record keyspace layout: %w", err)
	}
	if !applied && o.Shards != 0 {
		if have, _ := got["shards"].(int); have != o.Shards {
			return shardsError(o, have)
		}
	}
	return nil
}

// checkShards refuses, before any migration is applied, a shard count
// other than the one the keyspace's layout already records.
func checkShards(ctx context.Context, session *gocql.Session, o Options, host string) error {
	if o.Shards == 0 {
		return nil
	}
	var have int
	err := session.Query(strings.Replace(cqlReadShards, "keyspace_config", o.Keyspace+".keyspace_config", 1)).SetHostID(host).WithContext(ctx).Scan(&have)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return nil // no layout yet: writeLayout records it
	case err != nil:
		return fmt.Errorf("read keyspace layout: %w", err)
	case have != o.Shards:
		return shardsError(o, have)
	}
	return nil
}

func shardsError(o Options, have int) error {
	return fmt.Errorf("%w: keyspace %s has %d shards, asked for %d (fixed when the keyspace was created; leave --shards at 0 to take the keyspace's)", ErrSchemaMismatch, o.Keyspace, have, o.Shards)
}

// qualify prefixes the table a CREATE/ALTER TABLE statement names with the
// keyspace (the migration session has none set).
func qualify(stmt, keyspace string) string {
	for _, p := range []string{"CREATE TABLE IF NOT EXISTS ", "ALTER TABLE ", "CREATE TABLE "} {
		if strings.HasPrefix(stmt, p) {
			return p + keyspace + "." + stmt[len(p):]
		}
	}
	return stmt
}

// checkChecksums fails when a migration this binary carries differs from
// the one applied under the same version: the keyspace was built by other
// DDL than the binary believes.
func checkChecksums(ms []migration, applied map[int]string) error {
	for _, m := range ms {
		if sum, ok := applied[m.version]; ok && sum != "" && sum != m.checksum {
			return fmt.Errorf("%w: migration %04d_%s was applied with checksum %s, this binary carries %s", ErrSchemaMismatch, m.version, m.name, sum, m.checksum)
		}
	}
	return nil
}

// appliedVersions maps each applied migration version to its checksum.
func appliedVersions(ctx context.Context, session *gocql.Session, keyspace, host string) (map[int]string, error) {
	var name string
	err := session.Query(cqlTableExists, keyspace).SetHostID(host).WithContext(ctx).Scan(&name)
	if errors.Is(err, gocql.ErrNotFound) {
		return map[int]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read schema tables: %w", err)
	}
	stmt := strings.Replace(cqlAppliedMigrations, "schema_migrations", keyspace+".schema_migrations", 1)
	iter := session.Query(stmt).SetHostID(host).WithContext(ctx).Iter()
	applied := map[int]string{}
	var (
		v   int
		sum *string
	)
	for iter.Scan(&v, &sum) {
		applied[v] = ""
		if sum != nil {
			applied[v] = *sum
		}
	}
	if err := iter.Close(); err != nil {
		if tableMissing(err) {
			// Another migrator has just created the table: the node lists
			// it in system_schema.tables a moment before it serves it. No
			// version is recorded yet (the table's first row comes after
			// the rest of migration 0001).
			return map[int]string{}, nil
		}
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	return applied, nil
}

// tableMissing reports whether err is Cassandra's answer to a query on a
// table it does not know ("table … does not exist", "unconfigured
// table …").
func tableMissing(err error) bool {
	var re gocql.RequestError
	if !errors.As(err, &re) || re.Code() != gocql.ErrCodeInvalid {
		return false
	}
	msg := strings.ToLower(re.Message())
	return strings.Contains(msg, "does not exist") || strings.Contains(msg, "unconfigured table")
}

// checkSchema fails unless the keyspace has the current layout and its
// applied migrations are exactly the ones this binary carries.
func checkSchema(ctx context.Context, session *gocql.Session, keyspace string) error {
	if err := checkLayout(ctx, session, keyspace, ""); err != nil {
		return err
	}
	applied, err := appliedVersions(ctx, session, keyspace, "")
	if err != nil {
		if cql.IsStorageError(err) {
			return fmt.Errorf("%w: %v", log.ErrUnavailable, err)
		}
		return err
	}
	if err := newerError(applied, keyspace); err != nil {
		return err
	}
	latest := LatestSchemaVersion()
	newest := 0
	for v := range applied {
		newest = max(newest, v)
	}
	switch {
	case len(applied) != latest || newest != latest:
		return fmt.Errorf("%w: keyspace %s is at schema version %d, this binary needs %d: run `server migrate`", ErrSchemaMismatch, keyspace, newest, latest)
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	return checkChecksums(ms, applied)
}

// newerError is ErrSchemaNewer when applied holds a version this binary
// does not carry: serving it, or migrating it with this binary, is
// refused alike.
func newerError(applied map[int]string, keyspace string) error {
	latest := LatestSchemaVersion()
	newest := 0
	for v := range applied {
		newest = max(newest, v)
	}
	if newest <= latest {
		return nil
	}
	return fmt.Errorf("%w: keyspace %s is at schema version %d, this binary knows up to %d: upgrade the server (a newer binary migrated the keyspace; this one cannot migrate it back)", ErrSchemaNewer, keyspace, newest, latest)
}

// oldLayoutTable is a table only the per-stream layout of earlier builds
// had (its feed outbox).
const oldLayoutTable = "feed_outbox"

// checkLayout refuses a keyspace of the per-stream layout (ErrOldLayout),
// saying what to do: no release shipped it, so it is not migrated.
func checkLayout(ctx context.Context, session *gocql.Session, keyspace, host string) error {
	var name string
	err := session.Query(cqlTableNamed, keyspace, oldLayoutTable).SetHostID(host).WithContext(ctx).Scan(&name)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return nil
	case err != nil:
		return cql.ReadErr("read schema tables", err)
	}
	return fmt.Errorf("%w: keyspace %s (it has table %s): this server keeps streams in shard logs and cannot read it; "+
		"serve a new keyspace (--keyspace <new name> --migrate), append the old events to it through the API, then drop %s",
		ErrOldLayout, keyspace, oldLayoutTable, keyspace)
}

// checkDataCenters refuses LOCAL_SERIAL / LOCAL_QUORUM on a keyspace
// replicated to several data centres: Paxos among one DC's replicas lets
// two DCs both commit the same version, and last-write-wins then loses
// acknowledged events.
func checkDataCenters(ctx context.Context, session *gocql.Session, o Options) error {
	var repl map[string]string
	if err := session.Query(cqlReplication, o.Keyspace).WithContext(ctx).Scan(&repl); err != nil {
		return cql.ReadErr("read keyspace replication", err)
	}
	return multiDCError(o, repl)
}

// multiDCError refuses LOCAL_* levels on a keyspace whose replication map
// names more than one data centre.
func multiDCError(o Options, repl map[string]string) error {
	dcs := 0
	for k := range repl {
		if k != "class" && k != "replication_factor" {
			dcs++
		}
	}
	local := strings.HasPrefix(strings.ToUpper(o.SerialConsistency), "LOCAL_") || strings.HasPrefix(strings.ToUpper(o.Consistency), "LOCAL_")
	if dcs > 1 && local {
		return fmt.Errorf("keyspace %s is replicated to %d data centres: LOCAL_SERIAL/LOCAL_QUORUM would let two DCs commit the same version; use --serial-consistency SERIAL and --consistency QUORUM (or EACH_QUORUM)", o.Keyspace, dcs)
	}
	return nil
}

// checkPaxos refuses to open the keyspace unless every node the session
// reaches runs paxos_variant v2 (ErrPaxosVariant otherwise). Under v1 a
// coordinator can answer Unavailable or Overloaded after a quorum accepted
// a proposal, and the *_without_linearizable_* variants give up the
// linearizable reads and rejected writes the commit path relies on.
// system_views.settings is node-local, so each node is asked on its own;
// a node that cannot be asked now (down, or not answering) is logged and
// skipped, but at least one must answer.
func checkPaxos(ctx context.Context, session *gocql.Session, logger *slog.Logger, role string) error {
	checked := 0
	var lastErr error
	for _, h := range session.GetHosts() {
		if !h.IsUp() {
			continue
		}
		var v string
		err := session.Query(cqlPaxosVariant).SetHostID(h.HostID()).WithContext(ctx).Idempotent(true).Scan(&v)
		var re gocql.RequestError
		switch {
		case errors.Is(err, gocql.ErrNotFound):
			v = ""
		case errors.As(err, &re) && re.Code() == gocql.ErrCodeUnauthorized:
			// A role that is not a superuser needs the grant; refusing is
			// safer than guessing (the default is v1).
			if role == "" {
				role = "<role>"
			}
			return fmt.Errorf("%w: cannot read it: %v; let the role read it: GRANT SELECT ON system_views.settings TO %s", ErrPaxosVariant, err, role)
		case err != nil:
			logger.Warn("cannot read paxos_variant from a node; not checked", "node", h.ConnectAddress().String(), "err", err)
			lastErr = err
			continue
		}
		if err := paxosVariantError(v); err != nil {
			return fmt.Errorf("node %s: %w", h.ConnectAddress(), err)
		}
		checked++
	}
	if checked == 0 && lastErr == nil {
		return fmt.Errorf("%w: cannot read it: no node is up", ErrPaxosVariant)
	}
	if checked == 0 {
		return fmt.Errorf("%w: cannot read it from any node (system_views.settings): %v", ErrPaxosVariant, lastErr)
	}
	return nil
}

// paxosVariantError refuses every variant but v2 (the setting's value in
// system_views.settings; "" when the node has no such setting, Cassandra
// before 4.1).
func paxosVariantError(v string) error {
	if v == "v2" {
		return nil
	}
	if v == "" {
		v = "unknown (Cassandra before 4.1)"
	}
	return fmt.Errorf("%w: it runs %s; set paxos_variant: v2 in cassandra.yaml (or -Dcassandra.settings.paxos_variant=v2), see docs/cassandra-local.md", ErrPaxosVariant, v)
}
