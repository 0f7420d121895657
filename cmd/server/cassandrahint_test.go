package main

import (
	"errors"
	"strings"
	"testing"
)

// TestCassandraHint: each connection failure gets the flag that fixes it
// (TestSecureCassandra sees them from a real node; this covers the cases
// that node cannot produce, and the ones that must stay unchanged).
func TestCassandraHint(t *testing.T) {
	withTLS := Config{CassandraTLSCAFile: "ca.pem"}
	for _, c := range []struct {
		name string
		cfg  Config
		msg  string
		want string // "" : returned unchanged
	}{
		{"TLSToPlainNode", withTLS, "unable to discover protocol version: tls: first record does not look like a TLS handshake", "drop the --cassandra-tls* flags"},
		{"ClientCertRefused", Config{CassandraTLSCertFile: "c.pem"}, "remote error: tls: bad certificate", "refused the client certificate"},
		{"ClosedAfterHandshake", withTLS, "gocql: no response to connection startup within timeout", "--cassandra-tls-cert-file"},
		{"ResetWithClientCert", Config{CassandraTLSCAFile: "ca.pem", CassandraTLSCertFile: "c.pem"}, "read: connection reset by peer", ""},
		{"Timeout", Config{}, "gocql: no response received from cassandra within timeout period", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := errors.New(c.msg)
			got := c.cfg.cassandraHint(in)
			if !errors.Is(got, in) {
				t.Fatalf("hint lost the error: %v", got)
			}
			if c.want == "" && got != in {
				t.Fatalf("hinted %q: %v", c.msg, got)
			}
			if c.want != "" && !strings.Contains(got.Error(), c.want) {
				t.Fatalf("got %v, want a hint with %q", got, c.want)
			}
		})
	}
}
