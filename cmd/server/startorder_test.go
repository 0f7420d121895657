package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// TestStartRefusesBadListenerBeforeMigrating: serve --migrate with a
// listener it cannot bind (an address in use) or a certificate it cannot
// read fails without creating the keyspace. The metrics and pprof
// listeners and the certificate were opened after the migration and
// after the store had claimed its shards, the API listener after the
// migration.
func TestStartRefusesBadListenerBeforeMigrating(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	missing := filepath.Join(t.TempDir(), "none.pem")
	for name, flags := range map[string][]string{
		"Listen":        {"--listen=" + busy.Addr().String()},
		"MetricsListen": {"--listen=127.0.0.1:0", "--metrics-listen=" + busy.Addr().String()},
		"PprofListen":   {"--listen=127.0.0.1:0", "--pprof-listen=" + busy.Addr().String()},
		"Certificate":   {"--listen=127.0.0.1:0", "--tls-cert-file=" + missing, "--tls-key-file=" + missing},
	} {
		t.Run(name, func(t *testing.T) {
			o := cassandratest.Options(t) // never created, unless by mistake
			t.Cleanup(func() { cassandratest.Drop(t, o) })
			args := append([]string{"serve", "--migrate", "--keyspace=" + o.Keyspace, "--cassandra-hosts=" + strings.Join(o.Hosts, ",")}, flags...)
			var stderr bytes.Buffer
			if code := run(context.Background(), func() {}, args, env(nil), io.Discard, &stderr); code == 0 {
				t.Fatalf("exit 0 with %v", flags)
			}
			sess := cassandratest.Session(t, cassandra.Options{Hosts: o.Hosts, Keyspace: "system_schema"})
			var n int
			if err := sess.Query(`SELECT count(*) FROM keyspaces WHERE keyspace_name = ?`, o.Keyspace).Scan(&n); err != nil || n != 0 {
				t.Fatalf("keyspace %s: count %d, %v; want none created before the start failed: %s", o.Keyspace, n, err, stderr.String())
			}
		})
	}
}
