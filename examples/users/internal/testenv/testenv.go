// Package testenv starts what the users example's tests run against: a
// real eventlog HTTP API over a real Cassandra store in a keyspace of its
// own, and fresh keyspaces for read models. Only tests import it; the
// example itself talks to eventlog through the public client alone.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// Eventlog is a running eventlog server.
type Eventlog struct {
	URL   string
	Store *shardstore.Store
}

// MustEventlog starts the eventlog HTTP API over a fresh store with the
// fast feed timings above; both end with the test.
func MustEventlog(tb testing.TB) *Eventlog {
	tb.Helper()
	reg := prometheus.NewRegistry()
	store, _ := shardstoretest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Registerer = reg
	})
	api, err := httpapi.New(store, httpapi.Config{
		Registry: reg,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(api)
	tb.Cleanup(ts.Close)
	return &Eventlog{URL: ts.URL, Store: store}
}

// MustClient returns a client of e with a short back-off.
func (e *Eventlog) MustClient(tb testing.TB) *client.Client {
	tb.Helper()
	c, err := client.New(client.Options{
		BaseURL: e.URL,
		Retry:   client.RetryPolicy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Hosts are the Cassandra contact points (EVENTLOG_TEST_CASSANDRA_HOSTS).
func Hosts() []string { return cassandratest.Hosts() }

// Keyspace returns a fresh keyspace name for a read model, dropped when
// the test ends (the read model creates it).
func Keyspace(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	ks := "t_users_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		c := gocql.NewCluster(Hosts()...)
		c.Timeout = time.Minute
		s, err := c.CreateSession()
		if err != nil {
			tb.Logf("drop keyspace %s: %v", ks, err)
			return
		}
		defer s.Close()
		if err := s.Query("DROP KEYSPACE IF EXISTS " + ks).Exec(); err != nil {
			tb.Logf("drop keyspace %s: %v", ks, err)
		}
	})
	return ks
}

// Context returns a context that ends with the test or after 2 minutes.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
