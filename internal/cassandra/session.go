package cassandra

import (
	"fmt"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

func parseConsistency(s string) (gocql.Consistency, error) {
	c, err := gocql.ParseConsistencyWrapper(strings.ToUpper(s))
	if err != nil {
		return 0, fmt.Errorf("consistency %q: %w", s, err)
	}
	switch c {
	case gocql.Quorum, gocql.LocalQuorum, gocql.EachQuorum, gocql.All:
		return c, nil
	}
	// Below a quorum, a retry's id lookup can miss the record of the
	// original on another replica, and an acknowledged event can read as
	// missing: the invariants need quorum reads and writes.
	return 0, fmt.Errorf("consistency %q: want QUORUM, LOCAL_QUORUM, EACH_QUORUM or ALL", s)
}

func parseSerial(s string) (gocql.Consistency, error) {
	switch strings.ToUpper(s) {
	case "SERIAL":
		return gocql.Serial, nil
	case "LOCAL_SERIAL":
		return gocql.LocalSerial, nil
	}
	return 0, fmt.Errorf("serial consistency %q: want SERIAL or LOCAL_SERIAL", s)
}

// newCluster is the one place sessions are configured: token-aware routing
// over round robin, explicit timeouts, and a retry policy that gocql applies
// only to statements marked idempotent, so conditional writes are never
// retried blindly.
func newCluster(o *Options, keyspace string) (*gocql.ClusterConfig, error) {
	cons, err := parseConsistency(o.Consistency)
	if err != nil {
		return nil, err
	}
	serial, err := parseSerial(o.SerialConsistency)
	if err != nil {
		return nil, err
	}
	c := gocql.NewCluster(o.Hosts...)
	c.Keyspace = keyspace
	c.Consistency = cons
	c.SerialConsistency = serial
	c.Timeout = o.Timeout
	c.ConnectTimeout = o.ConnectTimeout
	c.WriteTimeout = o.Timeout
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	c.RetryPolicy = &gocql.ExponentialBackoffRetryPolicy{NumRetries: 3, Min: 50 * time.Millisecond, Max: time.Second}
	c.DefaultIdempotence = false
	c.MaxPreparedStmts = 1000
	c.ReconnectInterval = time.Second
	if o.Dialer != nil {
		c.Dialer = o.Dialer
	}
	return c, nil
}
