package cassandra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
)

// cqlReleaseVersion asks one node whether it answers (system.local,
// Cassandra's own).
const cqlReleaseVersion = `SELECT release_version FROM system.local`

// ddlHostWait bounds Migrate's wait for its schema node (ddlHost) when
// the driver does not reach it: a node restarting comes back within it.
const ddlHostWait = time.Minute

// node is what ddlHost needs of a gocql.HostInfo.
type node struct {
	id, addr string
	up       bool
}

// lowestNode is the node of nodes with the lowest host id, up or not
// (false when nodes is empty).
func lowestNode(nodes []node) (node, bool) {
	var low node
	for _, n := range nodes {
		if n.id != "" && (low.id == "" || n.id < low.id) {
			low = n
		}
	}
	return low, low.id != ""
}

// ddlHost returns the host id of the node that every statement of a
// migration run goes to: the node with the lowest host id of all the
// nodes the driver knows (from system.local and system.peers: the
// cluster's members, up or down). Every migrator started together
// chooses the same node whatever its contact points, and one node applies
// schema changes one at a time, each IF NOT EXISTS against the schema it
// holds: concurrent CREATE TABLE IF NOT EXISTS on different coordinators
// can each create the table, with different table ids, and the nodes then
// replace one by another (a migrator's next ALTER finds no table, a
// write to the replaced id is lost). The choice is not among the nodes
// up: two migrators could see different nodes up and choose apart. When
// the node does not answer, ddlHost waits up to ddlHostWait (the driver
// reconnects every second), then fails with log.ErrUnavailable naming it.
func ddlHost(ctx context.Context, session *gocql.Session, logger *slog.Logger) (string, error) {
	deadline := time.Now().Add(ddlHostWait)
	warned := false
	for {
		var nodes []node
		for _, h := range session.GetHosts() {
			nodes = append(nodes, node{id: h.HostID(), addr: h.ConnectAddress().String(), up: h.IsUp()})
		}
		n, ok := lowestNode(nodes)
		if !ok {
			return "", fmt.Errorf("%w: the driver knows no Cassandra node to send schema changes to", log.ErrUnavailable)
		}
		err := errors.New("the driver sees it down")
		if n.up {
			var v string
			if err = session.Query(cqlReleaseVersion).SetHostID(n.id).WithContext(ctx).Scan(&v); err == nil {
				return n.id, nil
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return "", fmt.Errorf("%w: schema changes go to node %s (host id %s, the lowest of the cluster, so that migrators started together use the same node) and it does not answer: %v; "+
				"start it, or remove it from the cluster (nodetool removenode), and migrate again", log.ErrUnavailable, n.addr, n.id, err)
		}
		if !warned {
			logger.Warn("waiting for the node schema changes go to", "node", n.addr, "host_id", n.id, "err", err)
			warned = true
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// schemaAgreementWait bounds agreeOn, as gocql's MaxWaitSchemaAgreement
// (60 s) bounds its own wait.
const schemaAgreementWait = time.Minute

// cqlSchemaVersion is a node's own schema version (system.local: what it
// has applied, not what gossip last heard of another).
const cqlSchemaVersion = `SELECT schema_version FROM system.local`

// agreeOn waits until every node of the cluster reports the schema
// version that host, the node every schema change of the run goes to,
// reports: then each has applied every change made so far, its own and
// other migrators'. gocql's AwaitSchemaAgreement is not enough: it
// compares the versions its control connection's node knows, its own and
// the others' as gossip last told it, and a second later than a change
// they can all still be the version before it. A migrator whose CREATE
// or ALTER … IF NOT EXISTS found the change already made by another then
// went on at once, and its next statement reached nodes that did not yet
// know the new column (a Paxos prepare naming keyspace_config's
// created_version failed on two replicas of three: "Unknown column
// created_version during deserialization"). A node the driver cannot
// reach holds the wait, as a node gossip reports on an old version holds
// gocql's; unlike gocql's, so does one that is up but out of this
// migrator's reach (gossip said it agreed), which a migration then needs
// to reach (docs/data-model.md, "Schema versions").
func agreeOn(ctx context.Context, session *gocql.Session, host string) error {
	deadline := time.Now().Add(schemaAgreementWait)
	for {
		lag, err := behindHost(ctx, session, host)
		if err == nil && lag == "" {
			return nil
		}
		if err == nil {
			err = errors.New(lag)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("the nodes do not agree on the schema within %s: %w", schemaAgreementWait, err)
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// behindHost names a node whose schema version is not host's ("" when
// every node reports host's).
func behindHost(ctx context.Context, session *gocql.Session, host string) (string, error) {
	var want gocql.UUID
	if err := session.Query(cqlSchemaVersion).SetHostID(host).WithContext(ctx).Scan(&want); err != nil {
		return "", fmt.Errorf("schema version of the schema node: %w", err)
	}
	for _, h := range session.GetHosts() {
		if h.HostID() == host {
			continue
		}
		var v gocql.UUID
		if err := session.Query(cqlSchemaVersion).SetHostID(h.HostID()).WithContext(ctx).Scan(&v); err != nil {
			return "", fmt.Errorf("schema version of node %s: %w", h.ConnectAddress(), err)
		}
		if v != want {
			return fmt.Sprintf("node %s is on schema version %s, the schema node on %s", h.ConnectAddress(), v, want), nil
		}
	}
	return "", nil
}
