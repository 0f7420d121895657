package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// TestMigrateConcurrentStarts starts several instances with serve
// --migrate at the same moment on a keyspace that does not exist yet, as
// docker-compose or a Kubernetes Deployment do: every one comes up, every
// migration is recorded once, and they share one layout (shards, token
// secret). Each migrator used to see the schema_migrations table another
// had just created (in system_schema.tables) while the node still
// answered "table schema_migrations does not exist" to its read, and
// failed to start. The window is Cassandra's, so a few rounds are played.
func TestMigrateConcurrentStarts(t *testing.T) {
	const rounds, instances = 4, 3
	for round := range rounds {
		o := cassandratest.Options(t)
		t.Cleanup(func() { cassandratest.Drop(t, o) })
		var wg sync.WaitGroup
		errs := make([]error, instances)
		mains := make([]*Main, instances)
		for i := range instances {
			m := NewMain()
			m.Logger = o.Logger
			args := []string{"--listen=127.0.0.1:0", "--migrate", "--keyspace=" + o.Keyspace, "--cassandra-hosts=" + strings.Join(o.Hosts, ",")}
			if err := m.Config.ParseFlags("server", args, env(nil), io.Discard); err != nil {
				t.Fatal(err)
			}
			mains[i] = m
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				errs[i] = m.Run(ctx)
			})
		}
		wg.Wait()
		for _, m := range mains {
			m.Close()
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: instance %d of %d started together with --migrate: %v", round, i, instances, err)
			}
		}
		sess := cassandratest.Session(t, o)
		var n int
		if err := sess.Query(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != cassandra.LatestSchemaVersion() {
			t.Fatalf("round %d: %d migrations recorded (%v), want %d", round, n, err, cassandra.LatestSchemaVersion())
		}
		var secret []byte
		var shards int
		if err := sess.Query(`SELECT shards, token_secret FROM keyspace_config WHERE id = 0`).Scan(&shards, &secret); err != nil || shards != 8 || len(secret) != 32 || bytes.Equal(secret, make([]byte, 32)) {
			t.Fatalf("round %d: layout %d shards, secret %x, %v", round, shards, secret, err)
		}
	}
}
