package cassandra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure the store's connection to Cassandra and the parts of
// it that do not depend on the instance (shardstore.Options adds those).
// Zero fields take the defaults of DefaultOptions through EnsureDefaults.
type Options struct {
	// Hosts are the contact points (host or host:port). Default 127.0.0.1.
	Hosts []string
	// Keyspace holds eventlog's tables. Default "eventlog".
	Keyspace string
	// Replication is the keyspace replication used by Migrate when it
	// creates the keyspace: "SimpleStrategy:1" (default) or
	// "NetworkTopologyStrategy:dc1=3,dc2=3".
	Replication string
	// Username and Password authenticate to Cassandra
	// (PasswordAuthenticator); empty Username: no authentication.
	Username, Password string
	// TLS, if set, encrypts the connections to Cassandra.
	TLS *TLSOptions
	// LocalDC, if set, routes queries to that data centre's nodes first
	// (DC-aware round robin under the token-aware policy).
	LocalDC string
	// Consistency of reads and writes. Default LOCAL_QUORUM.
	Consistency string
	// SerialConsistency of conditional writes. Default LOCAL_SERIAL.
	SerialConsistency string
	// Timeout bounds every query. Default 10s.
	Timeout time.Duration
	// ConnectTimeout bounds connection set-up. Default 10s.
	ConnectTimeout time.Duration
	// BucketWidth is the time window of one event partition. Default 24h.
	BucketWidth time.Duration
	// BucketMaxEvents caps the rows of one event partition. Default 50,000.
	BucketMaxEvents int64
	// IdempotencyWindow is how long the event ids of an append are kept for
	// recognising "any" retries (while the append is also in the stream's
	// current or previous bucket). Default 24h.
	IdempotencyWindow time.Duration
	// PageSize of range reads, in rows at most (a limit below it shrinks
	// the page, and so do rows that make a page larger than about 1 MiB
	// stored: streams.readPageBytes). Default 5,000: replay throughput
	// rises with fewer, larger pages (docs/benchmarks.md).
	PageSize int
	// Limits bound request contents.
	Limits log.Limits
	// GroupLeaseTTL is how long a consumer group member holds its
	// partitions (and counts as live) after its last join or heartbeat.
	// Members heartbeat well within it (the client: every third). Default
	// 10s.
	GroupLeaseTTL time.Duration
	// GroupLeaseGrace is how long past a lease's TTL another member may
	// take the partition: instances judge a lease by how long they have
	// seen its row unchanged, and the grace covers the delay between a
	// renewal's write and another instance's read of it. Default 1s.
	GroupLeaseGrace time.Duration
	// GroupLagCap bounds the events counted for one group's lag (the count
	// reads a position per event): a lag at the cap means "at least".
	// Default 100,000.
	GroupLagCap int
	// Shards is the shard count Migrate records when it creates the
	// keyspace's layout (keyspace_config); 0 takes partition.DefaultShards
	// for a new keyspace and accepts an existing one's. Fixed once set.
	Shards int
	// SegmentRows is the rows of one shard log segment, recorded like
	// Shards. Default 1,000.
	SegmentRows int64
	// Now is the clock; tests inject their own. Default time.Now.
	Now func() time.Time
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer, if set, receives the store's Prometheus metrics.
	Registerer prometheus.Registerer
	// Dialer, if set, opens every connection to Cassandra (custom
	// networking; fault-injection tests).
	Dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
}

// DefaultOptions returns the defaults documented on Options.
func DefaultOptions() Options {
	o := Options{}
	o.EnsureDefaults()
	return o
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"127.0.0.1"}
	}
	if o.Keyspace == "" {
		o.Keyspace = "eventlog"
	}
	if o.Replication == "" {
		o.Replication = "SimpleStrategy:1"
	}
	if o.Consistency == "" {
		o.Consistency = "LOCAL_QUORUM"
	}
	if o.SerialConsistency == "" {
		o.SerialConsistency = "LOCAL_SERIAL"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.BucketWidth == 0 {
		o.BucketWidth = 24 * time.Hour
	}
	if o.BucketMaxEvents == 0 {
		o.BucketMaxEvents = 50_000
	}
	if o.IdempotencyWindow == 0 {
		o.IdempotencyWindow = 24 * time.Hour
	}
	if o.PageSize == 0 {
		o.PageSize = 5000
	}
	if o.GroupLeaseTTL == 0 {
		o.GroupLeaseTTL = 10 * time.Second
	}
	if o.GroupLeaseGrace == 0 {
		o.GroupLeaseGrace = time.Second
	}
	if o.GroupLagCap == 0 {
		o.GroupLagCap = 100_000
	}
	if o.Limits == (log.Limits{}) {
		o.Limits = log.DefaultLimits()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	if !validKeyspace(o.Keyspace) {
		return fmt.Errorf("keyspace %q: want 1-48 characters of [a-z0-9_], starting with a letter", o.Keyspace)
	}
	if _, err := replicationCQL(o.Replication); err != nil {
		return err
	}
	if _, err := parseConsistency(o.Consistency); err != nil {
		return err
	}
	if _, err := parseSerial(o.SerialConsistency); err != nil {
		return err
	}
	if o.BucketWidth < time.Second {
		return errors.New("bucket width must be at least 1s")
	}
	if o.BucketMaxEvents < int64(o.Limits.MaxEventsPerAppend) {
		return fmt.Errorf("bucket max events (%d) must be at least the events per append limit (%d)", o.BucketMaxEvents, o.Limits.MaxEventsPerAppend)
	}
	if o.Limits.MaxEventsPerAppend < 1 || o.Limits.MaxEventsPerAppend > 10_000 {
		return errors.New("events per append must be 1..10000 (one log record carries them all)")
	}
	if o.BucketMaxEvents > 1_000_000 {
		return errors.New("bucket max events above 1,000,000 makes partitions too large for Cassandra")
	}
	if o.IdempotencyWindow < time.Minute {
		return errors.New("idempotency window must be at least 1m")
	}
	if o.GroupLeaseTTL < 100*time.Millisecond || o.GroupLeaseTTL > time.Hour || o.GroupLeaseGrace < 0 || o.GroupLagCap < 1 {
		return errors.New("group lease TTL must be 100ms..1h, lease grace >= 0, lag cap >= 1")
	}
	if o.PageSize < 1 || o.PageSize > 10_000 {
		return errors.New("page size must be 1..10000")
	}
	return nil
}

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

// replicationCQL turns "SimpleStrategy:1" or "NetworkTopologyStrategy:dc1=3"
// into a CQL replication map.
func replicationCQL(r string) (string, error) {
	class, args, ok := strings.Cut(r, ":")
	bad := fmt.Errorf("replication %q: want SimpleStrategy:<rf> or NetworkTopologyStrategy:<dc>=<rf>[,<dc>=<rf>...]", r)
	if !ok || args == "" {
		return "", bad
	}
	switch class {
	case "SimpleStrategy":
		if !digits(args) {
			return "", bad
		}
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %s}", args), nil
	case "NetworkTopologyStrategy":
		var b strings.Builder
		b.WriteString("{'class': 'NetworkTopologyStrategy'")
		for _, kv := range strings.Split(args, ",") {
			dc, rf, ok := strings.Cut(kv, "=")
			if !ok || dc == "" || !digits(rf) || strings.ContainsAny(dc, "'\\ ") {
				return "", bad
			}
			fmt.Fprintf(&b, ", '%s': %s", dc, rf)
		}
		b.WriteString("}")
		return b.String(), nil
	}
	return "", bad
}

func digits(s string) bool {
	if s == "" || len(s) > 2 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
