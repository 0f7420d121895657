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
