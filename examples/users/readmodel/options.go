package readmodel

import (
	"errors"
	"fmt"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Options configure a Store. Zero fields take the defaults documented on
// each through EnsureDefaults.
type Options struct {
	// Hosts are the Cassandra contact points. Default 127.0.0.1.
	Hosts []string
	// Keyspace holds the read model's tables; it is not eventlog's.
	// Default "users_example".
	Keyspace string
	// ReplicationFactor of the keyspace when Open creates it
	// (SimpleStrategy). Default 1.
	ReplicationFactor int
	// Consistency of reads and writes: a quorum level, so a query after
	// the projection's write sees it. Default LOCAL_QUORUM.
	Consistency string
	// Timeout bounds every query. Default 5s.
	Timeout time.Duration
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"127.0.0.1"}
	}
	if o.Keyspace == "" {
		o.Keyspace = "users_example"
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = 1
	}
	if o.Consistency == "" {
		o.Consistency = "LOCAL_QUORUM"
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	if !validKeyspace(o.Keyspace) {
		return fmt.Errorf("keyspace %q: want 1-48 characters of [a-z0-9_], starting with a letter", o.Keyspace)
	}
	if o.ReplicationFactor < 1 || o.ReplicationFactor > 9 {
		return errors.New("replication factor must be 1..9")
	}
	if _, err := o.consistency(); err != nil {
		return err
	}
	if o.Timeout <= 0 {
		return errors.New("timeout must be positive")
	}
	return nil
}

func (o *Options) consistency() (gocql.Consistency, error) {
	c, err := gocql.ParseConsistencyWrapper(strings.ToUpper(o.Consistency))
	if err != nil {
		return 0, fmt.Errorf("consistency %q: %w", o.Consistency, err)
	}
	switch c {
	case gocql.Quorum, gocql.LocalQuorum, gocql.EachQuorum, gocql.All:
		return c, nil
	}
	// The version check reads the row before its compare-and-set; below a
	// quorum it could read a stale version and redo index writes for
	// nothing, and a query could miss a write already acknowledged.
	return 0, fmt.Errorf("consistency %q: want QUORUM, LOCAL_QUORUM, EACH_QUORUM or ALL", o.Consistency)
}

// validKeyspace keeps the keyspace name safe to splice into the two
// schema statements that cannot take it as a bind marker.
func validKeyspace(k string) bool {
	if len(k) == 0 || len(k) > 48 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
