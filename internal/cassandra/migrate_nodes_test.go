package cassandra_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// clusterHosts are the 3 node addresses of scripts/cassandra-cluster named
// by EVENTLOG_TEST_CLUSTER; the test skips when it is unset.
func clusterHosts(t *testing.T) []string {
	t.Helper()
	env := os.Getenv("EVENTLOG_TEST_CLUSTER")
	if env == "" {
		t.Skip("EVENTLOG_TEST_CLUSTER not set (e.g. 127.0.0.11,127.0.0.12,127.0.0.13 after scripts/cassandra-cluster up)")
	}
	var hosts []string
	for _, h := range strings.Split(env, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) != 3 {
		t.Fatalf("EVENTLOG_TEST_CLUSTER=%q: want the 3 node addresses of scripts/cassandra-cluster", env)
	}
	return hosts
}

// TestMigrateConcurrentOnSeveralNodes starts several migrators at once on
// a new keyspace, each with another node of a 3-node cluster as its only
// contact point, as instances started together with serve --migrate do:
// every one succeeds, and every node ends with the same schema version and
// one id per table. Concurrent CREATE TABLE IF NOT EXISTS on different
// coordinators used to create a table twice with different ids. A few
// rounds are played: the race is Cassandra's.
func TestMigrateConcurrentOnSeveralNodes(t *testing.T) {
	hosts := clusterHosts(t)
	// The cluster must agree before the test begins: a node an earlier
	// test left on a schema of its own (see cassandratest.Drop) fails
	// every migrator here, whatever Migrate does.
	if err := agreed(hosts); err != nil {
		t.Fatalf("before the first round, the nodes disagree on the schema: %v", err)
	}
	const rounds, perNode = 4, 2
	for round := range rounds {
		o := cassandratest.Options(t)
		o.Hosts = hosts
		o.Replication = "SimpleStrategy:3"
		t.Cleanup(func() { cassandratest.Drop(t, o) })
		n := perNode * len(hosts)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			m := o
			m.Hosts = []string{hosts[i%len(hosts)]}
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				errs[i] = cassandra.Migrate(ctx, m)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: migrator %d (contact point %s): %v", round, i, hosts[i%len(hosts)], err)
			}
		}
		if err := sameSchemaEverywhere(o.Keyspace, hosts); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// agreed waits (at most gocql's MaxWaitSchemaAgreement) for the nodes of
// hosts to report the same schema version.
func agreed(hosts []string) error {
	s, err := clusterSession(hosts)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.AwaitSchemaAgreement(context.Background())
}

// clusterSession is a session on hosts, for the checks of the nodes.
func clusterSession(hosts []string) (*gocql.Session, error) {
	c := gocql.NewCluster(hosts...)
	c.Timeout = 30 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return s, nil
}

// sameSchemaEverywhere fails unless every node of hosts reports the same
// schema version and the same id for each table of keyspace, all of the
// tables the migrations create.
func sameSchemaEverywhere(keyspace string, hosts []string) error {
	s, err := clusterSession(hosts)
	if err != nil {
		return err
	}
	defer s.Close()
	// Agreement first (at most gocql's MaxWaitSchemaAgreement): a table
	// created twice keeps the nodes apart.
	agreeErr := s.AwaitSchemaAgreement(context.Background())
	var (
		first   map[string]string
		firstAt string
		report  []string
	)
	versions := map[string]string{}
	for _, h := range s.GetHosts() {
		addr := h.ConnectAddress().String()
		var v gocql.UUID
		if err := s.Query(`SELECT schema_version FROM system.local`).SetHostID(h.HostID()).Scan(&v); err != nil {
			return fmt.Errorf("node %s: schema version: %w", addr, err)
		}
		versions[addr] = v.String()
		ids := map[string]string{}
		iter := s.Query(`SELECT table_name, id FROM system_schema.tables WHERE keyspace_name = ?`, keyspace).SetHostID(h.HostID()).Iter()
		var (
			name string
			id   gocql.UUID
		)
		for iter.Scan(&name, &id) {
			ids[name] = id.String()
		}
		if err := iter.Close(); err != nil {
			return fmt.Errorf("node %s: tables: %w", addr, err)
		}
		report = append(report, fmt.Sprintf("%s: %v", addr, ids))
		if first == nil {
			first, firstAt = ids, addr
			continue
		}
		if !maps.Equal(ids, first) {
			slices.Sort(report)
			return fmt.Errorf("nodes %s and %s list other tables or table ids of keyspace %s:\n%s", firstAt, addr, keyspace, strings.Join(report, "\n"))
		}
	}
	if len(versions) != len(hosts) {
		return fmt.Errorf("the driver sees %d nodes, want %d", len(versions), len(hosts))
	}
	if len(slices.Compact(slices.Sorted(maps.Values(versions)))) != 1 || agreeErr != nil {
		return fmt.Errorf("nodes disagree on the schema (%v): %v", agreeErr, versions)
	}
	for _, table := range []string{"schema_migrations", "keyspace_config"} {
		if first[table] == "" {
			return fmt.Errorf("keyspace %s has no table %s: %v", keyspace, table, first)
		}
	}
	return nil
}
