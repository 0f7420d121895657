package main

import (
	"context"
	"fmt"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra"
)

// cassandraHint adds to an error from connecting to Cassandra the flag
// that most likely fixes it: a login refused or missing, a node that
// speaks TLS to a client that does not (or the reverse), a certificate
// that does not verify, a client certificate the node wants. gocql
// reports these only as text ("unable to create session: ..."), so the
// causes are recognised by their messages; an error that matches none is
// returned as it is.
func (c *Config) cassandraHint(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	tlsOn := c.CassandraTLS || c.CassandraTLSCAFile != "" || c.CassandraTLSCertFile != "" || c.CassandraTLSServer != ""
	var hint string
	switch {
	case has("password are incorrect", "Username and/or password are incorrect"):
		hint = "Cassandra refused the login: check --cassandra-username and the password (--cassandra-password-file or EVENTLOG_CASSANDRA_PASSWORD)"
	case has("authentication required"):
		hint = "Cassandra requires a login: set --cassandra-username and --cassandra-password-file (or EVENTLOG_CASSANDRA_PASSWORD)"
	case has("x509:", "failed to verify certificate"):
		hint = "the Cassandra node's certificate does not verify: give the CA that signed it in --cassandra-tls-ca-file, and --cassandra-tls-server-name if it names another host than the one dialled"
	case has("certificate required", "bad certificate", "unknown certificate authority"):
		if c.CassandraTLSCertFile == "" {
			hint = "the Cassandra node requires a client certificate: set --cassandra-tls-cert-file and --cassandra-tls-key-file"
		} else {
			hint = "the Cassandra node refused the client certificate in --cassandra-tls-cert-file: it must be signed by a CA in the node's truststore"
		}
	case tlsOn && c.CassandraTLSCertFile == "" && has("no response to connection startup", "EOF", "connection reset by peer", "broken pipe"):
		// Under TLS 1.3 the node refuses a missing client certificate
		// after the client's side of the handshake is done: the client
		// sees a closed connection as often as the alert.
		hint = "the Cassandra node closed the connection after the TLS handshake: if it requires a client certificate (require_client_auth), set --cassandra-tls-cert-file and --cassandra-tls-key-file"
	case tlsOn && has("first record does not look like a TLS handshake"):
		hint = "the Cassandra node does not speak TLS on this port (client_encryption_options off): drop the --cassandra-tls* flags, or turn encryption on at the node"
	case !tlsOn && has("connection reset by peer", "EOF", "broken pipe"):
		hint = "the Cassandra node closed the connection: if it requires TLS (client_encryption_options), set --cassandra-tls-ca-file (or --cassandra-tls for the system roots)"
	default:
		return err
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// connectTool opens the Cassandra session of a one-shot subcommand (keys,
// verify), logging a failure with its hint; ok false means exit 1.
func (m *Main) connectTool(ctx context.Context) (session *gocql.Session, o cassandra.Options, ok bool) {
	o = m.Config.cassandraOptions(m.logger(), nil)
	session, err := cassandra.Connect(ctx, o)
	if err != nil {
		m.logger().Error("connect", "keyspace", o.Keyspace, "error", m.Config.cassandraHint(err))
		return nil, o, false
	}
	return session, o, true
}
