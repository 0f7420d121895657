package cassandra

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
)

// cqlKeyspaceNamed looks a keyspace up (system_schema, Cassandra's own).
const cqlKeyspaceNamed = `SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?`

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
	if o.LocalDC != "" {
		c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.DCAwareRoundRobinPolicy(o.LocalDC))
	}
	if o.Username != "" {
		c.Authenticator = gocql.PasswordAuthenticator{Username: o.Username, Password: o.Password}
	}
	if o.TLS != nil {
		cfg, err := o.TLS.config()
		if err != nil {
			return nil, err
		}
		c.SslOpts = &gocql.SslOptions{Config: cfg, EnableHostVerification: !o.TLS.InsecureSkipVerify}
	}
	// Idempotent queries only (DefaultIdempotence is off): naps of about
	// 50, 100 and 200 ms, none past the query's deadline (backoffRetry).
	c.RetryPolicy = &backoffRetry{NumRetries: 3, Min: 50 * time.Millisecond, Max: time.Second}
	c.DefaultIdempotence = false
	c.MaxPreparedStmts = 1000
	c.ReconnectInterval = time.Second
	// The driver holds each frame written to an idle connection for up to
	// 200 µs (its default) to send it with the next ones; on our test
	// machine that timer fired after about 1.2 ms, so every sequential
	// round trip paid it: SELECT release_version FROM system.local took
	// 1.6 ms at the median against 0.43 without, a state load 7 ms against
	// 5, GET /v1/streams/{stream} 3.6 against 2.1. Under load it bought
	// nothing (1-event ingest within the noise, same latencies:
	// docs/benchmarks.md, Session 18).
	c.WriteCoalesceWaitTime = 0
	if o.Dialer != nil {
		c.Dialer = o.Dialer
	}
	return c, nil
}

// TLSOptions configure encryption of the connections to Cassandra.
type TLSOptions struct {
	// CAFile is a PEM bundle of the CAs that sign the nodes' certificates.
	// Empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key, for nodes
	// that require one (mutual TLS). Both or neither.
	CertFile, KeyFile string
	// ServerName is the name the nodes' certificates must carry. Empty:
	// each node's host name or address, as dialled.
	ServerName string
	// InsecureSkipVerify turns off verification of the nodes'
	// certificates (tests only: it gives up what TLS protects).
	InsecureSkipVerify bool
}

// config builds the tls.Config of o (TLS 1.2 or later).
func (o *TLSOptions) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName, InsecureSkipVerify: o.InsecureSkipVerify} //nolint:gosec // off only when asked
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cassandra TLS CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cassandra TLS CA %s: no PEM certificate", o.CAFile)
		}
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("cassandra TLS: a client certificate needs both its certificate and key files")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cassandra TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// NewClusterConfig returns the session configuration every part of the
// store uses (token-aware routing, timeouts, consistency, no blind
// retries of conditional writes) for o's keyspace.
func NewClusterConfig(o Options) (*gocql.ClusterConfig, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return newCluster(&o, o.Keyspace)
}

// Connect opens a session on o's keyspace, configured as the store's, and
// makes the store's checks (CheckKeyspace). It starts nothing else: for
// parts with tables of their own (the API key store, server keys).
func Connect(ctx context.Context, o Options) (*gocql.Session, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cluster, err := newCluster(&o, o.Keyspace)
	if err != nil {
		return nil, err
	}
	session, err := CreateSession(ctx, cluster, o)
	if err != nil {
		return nil, err
	}
	if err := CheckKeyspace(ctx, session, o); err != nil {
		session.Close()
		return nil, err
	}
	return session, nil
}

// closeLimit bounds CloseSession's wait.
const closeLimit = 10 * time.Second

// CloseSession closes session at shutdown, waiting at most 10 s: gocql's
// Close can block for good when it is called while the driver reconnects
// its control connection (seen after an outage), and a process told to
// stop must stop. Past the limit the close goes on in the background and
// CloseSession reports false.
func CloseSession(session *gocql.Session) bool {
	return closeWithin(session.Close, closeLimit)
}

// closeWithin runs fn and waits for it at most limit.
func closeWithin(fn func(), limit time.Duration) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// CreateSession opens a session on cluster, made from o (NewClusterConfig).
// A failure is log.ErrUnavailable, but for a keyspace that does not exist:
// gocql reports it as "no connections were made" (each connection's USE
// fails), as it does a Cassandra it cannot reach, so then a session
// without the keyspace looks it up, and a missing keyspace is
// ErrSchemaMismatch saying how to create it.
func CreateSession(ctx context.Context, cluster *gocql.ClusterConfig, o Options) (*gocql.Session, error) {
	session, err := cluster.CreateSession()
	if err == nil {
		return session, nil
	}
	if errors.Is(err, gocql.ErrNoConnectionsStarted) && cluster.Keyspace != "" && keyspaceMissing(ctx, o, cluster.Keyspace) {
		return nil, fmt.Errorf("%w: keyspace %s does not exist: create it with `server migrate`, or start the server with --migrate", ErrSchemaMismatch, cluster.Keyspace)
	}
	return nil, fmt.Errorf("connect to %v: %w: %v", o.Hosts, log.ErrUnavailable, err)
}

// keyspaceMissing reports whether Cassandra, reached without a keyspace,
// has no keyspace of that name (false when it cannot tell).
func keyspaceMissing(ctx context.Context, o Options, keyspace string) bool {
	cluster, err := newCluster(&o, "")
	if err != nil {
		return false
	}
	session, err := cluster.CreateSession()
	if err != nil {
		return false
	}
	defer session.Close()
	var name string
	err = session.Query(cqlKeyspaceNamed, keyspace).WithContext(ctx).Scan(&name)
	return errors.Is(err, gocql.ErrNotFound)
}

// CheckKeyspace makes the checks made before a keyspace is served: it has
// the current layout and holds the schema version this binary knows
// (ErrOldLayout, ErrSchemaMismatch), LOCAL_* levels are not used across
// data centres, and every node runs paxos_variant v2 (ErrPaxosVariant).
func CheckKeyspace(ctx context.Context, session *gocql.Session, o Options) error {
	o.EnsureDefaults()
	if err := checkSchema(ctx, session, o.Keyspace); err != nil {
		return err
	}
	if err := checkDataCenters(ctx, session, o); err != nil {
		return err
	}
	return checkPaxos(ctx, session, o.Logger, o.Username)
}
