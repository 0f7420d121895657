package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// The node TestSecureCassandra runs against: scripts/cassandra with
// CASSANDRA_AUTH=password and CASSANDRA_CLIENT_TLS_DIR (.ci/run starts it
// on 127.0.0.4). Without EVENTLOG_TEST_SECURE_CASSANDRA the test is skipped.
const (
	envSecureNode   = "EVENTLOG_TEST_SECURE_CASSANDRA"         // the node's address
	envSecureTLSDir = "EVENTLOG_TEST_SECURE_CASSANDRA_TLS_DIR" // its CASSANDRA_CLIENT_TLS_DIR: ca.pem, client.pem, client-key.pem
	envSecureMutual = "EVENTLOG_TEST_SECURE_CASSANDRA_MUTUAL"  // 1: the node requires a client certificate
)

// secureNode is the password-and-TLS node's address and certificates.
type secureNode struct {
	host, ca, cert, key string
	mutual              bool
}

func mustSecureNode(t *testing.T) secureNode {
	t.Helper()
	host := os.Getenv(envSecureNode)
	if host == "" {
		t.Skipf("%s not set: no Cassandra with PasswordAuthenticator and client TLS to test against (see .ci/run)", envSecureNode)
	}
	dir := os.Getenv(envSecureTLSDir)
	if dir == "" {
		t.Fatalf("%s is set but %s is not", envSecureNode, envSecureTLSDir)
	}
	n := secureNode{host: host, ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "client.pem"),
		key: filepath.Join(dir, "client-key.pem"), mutual: os.Getenv(envSecureMutual) == "1"}
	for _, f := range []string{n.ca, n.cert, n.key} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// flags are the server's Cassandra flags for this node, with password file
// pw (and the client certificate when the node requires one).
func (n secureNode) flags(user, pw string) []string {
	f := []string{"--cassandra-username=" + user, "--cassandra-password-file=" + pw, "--cassandra-tls-ca-file=" + n.ca}
	if n.mutual {
		f = append(f, "--cassandra-tls-cert-file="+n.cert, "--cassandra-tls-key-file="+n.key)
	}
	return f
}

// runMain is MustRunMain that returns Run's error instead of failing.
func runMain(t *testing.T, keyspace, host string, args ...string) (*Main, error) {
	t.Helper()
	m := NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	args = append([]string{"--listen=127.0.0.1:0", "--keyspace=" + keyspace, "--cassandra-hosts=" + host, "--query-timeout=10s"}, args...)
	if err := m.Config.ParseFlags("server", args, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		m.Close()
		return nil, err
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m, nil
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecureCassandra runs the server's own configuration path (flags,
// password file, CA, client certificate) against a node that requires a
// password and TLS: it migrates, serves appends and reads, also as a role
// that is not a superuser; a wrong password, no TLS, a CA that did not sign
// the node and (mutual TLS) a missing client certificate each refuse to
// start with an error that says which.
func TestSecureCassandra(t *testing.T) {
	n := mustSecureNode(t)
	keyspace := cassandratest.Options(t).Keyspace
	superPW := writeFile(t, "superuser", "cassandra\n") // scripts/cassandra's default superuser
	t.Cleanup(func() { dropSecure(t, n, keyspace) })

	t.Run("OK", func(t *testing.T) {
		m, err := runMain(t, keyspace, n.host, append(n.flags("cassandra", superPW), "--migrate")...)
		if err != nil {
			t.Fatalf("run with password and TLS: %v", err)
		}
		appendAndRead(t, "http://"+m.Addr(), "secure-1")
		// `server keys` takes the same flags.
		if code, out, errOut := keysCmd(t, keyspace, []string{n.host}, append([]string{"create", "--name=ops", "--scope=admin"}, n.flags("cassandra", superPW)...)...); code != 0 || !strings.Contains(out, "evl_") {
			t.Fatalf("keys create: exit %d\n%s\n%s", code, out, errOut)
		}
	})

	// The shard-log write path opens its own sessions (store, key store)
	// from the same flags: appends, reads, the feeds and consumer groups
	// over password and TLS.
	t.Run("Shards", func(t *testing.T) {
		m, err := runMain(t, keyspace, n.host, append(n.flags("cassandra", superPW), "--migrate", "--auth=required")...)
		if err != nil {
			t.Fatalf("run the shard path with password and TLS: %v", err)
		}
		code, out, errOut := keysCmd(t, keyspace, []string{n.host}, append([]string{"create", "--name=shards-ops", "--scope=admin"}, n.flags("cassandra", superPW)...)...)
		if code != 0 {
			t.Fatalf("keys create: exit %d\n%s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		token := lines[len(lines)-1]
		base := "http://" + m.Addr()
		do := func(method, path, body string) (int, string) {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		// The key was made after the server read the keys: an unknown
		// token makes it read them again, at most once a second, so the
		// first request may come too soon after its start-up read.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			status, body := do("POST", "/v1/streams/secshard-1/events", `{"expected_version":"no_stream","events":[{"type":"Secured","data":{"n":1}}]}`)
			if status == http.StatusCreated {
				break
			}
			if status != http.StatusUnauthorized || time.Now().After(deadline) {
				t.Fatalf("append: %d %s", status, body)
			}
		}
		if status, body := do("GET", "/v1/streams/secshard-1/events", ""); status != http.StatusOK || !strings.Contains(body, `"type":"Secured","version":1`) {
			t.Fatalf("read: %d %s", status, body)
		}
		if status, body := do("GET", "/v1/feeds/category/secshard", ""); status != http.StatusOK || !strings.Contains(body, `"stream":"secshard-1"`) {
			t.Fatalf("feed: %d %s", status, body)
		}
		if status, body := do("POST", "/v1/groups/secure-g/members", `{"feed":"category/secshard","member":"m"}`); status != http.StatusOK || !strings.Contains(body, `"secret":`) {
			t.Fatalf("group join: %d %s", status, body)
		}
		if status, body := do("GET", "/v1/streams/secshard-1", ""); status != http.StatusOK {
			t.Fatalf("info: %d %s", status, body)
		}
	})

	// A role of its own with rights on the keyspace only, as a deployment
	// would run: refused until it may read paxos_variant (the error says
	// which grant), then served.
	t.Run("OwnRole", func(t *testing.T) {
		s := secureSession(t, n, "cassandra", "cassandra")
		role := keyspace + "_role"
		grant := func(qs ...string) {
			for _, q := range qs {
				if err := s.Query(q).Exec(); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
		grant("CREATE ROLE IF NOT EXISTS "+role+" WITH PASSWORD = 'role-pw' AND LOGIN = true",
			"GRANT SELECT ON KEYSPACE "+keyspace+" TO "+role,
			"GRANT MODIFY ON KEYSPACE "+keyspace+" TO "+role)
		t.Cleanup(func() { secureSession(t, n, "cassandra", "cassandra").Query("DROP ROLE IF EXISTS " + role).Exec() })
		pw := writeFile(t, "pw", "role-pw")
		_, err := runMain(t, keyspace, n.host, n.flags(role, pw)...)
		if !errors.Is(err, cassandra.ErrPaxosVariant) || !strings.Contains(err.Error(), "GRANT SELECT ON system_views.settings TO "+role) {
			t.Fatalf("run without SELECT on system_views.settings: %v, want ErrPaxosVariant naming the grant", err)
		}
		grant("GRANT SELECT ON system_views.settings TO " + role)
		// The node caches the role's permissions (permissions_validity,
		// 2 s by default): the grant shows within a few seconds.
		var m *Main
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
			if m, err = runMain(t, keyspace, n.host, n.flags(role, pw)...); err == nil {
				break
			}
			if !errors.Is(err, cassandra.ErrPaxosVariant) || time.Now().After(deadline) {
				t.Fatalf("run as role %s after the grant: %v", role, err)
			}
		}
		appendAndRead(t, "http://"+m.Addr(), "secure-2")
		// The shard write path needs no more rights.
		shards, err := runMain(t, keyspace, n.host, n.flags(role, pw)...)
		if err != nil {
			t.Fatalf("run the shard path as role %s: %v", role, err)
		}
		appendAndRead(t, "http://"+shards.Addr(), "secure-4")
	})

	refused := func(t *testing.T, args []string, want ...string) {
		t.Helper()
		start := time.Now()
		_, err := runMain(t, keyspace, n.host, args...)
		if err == nil {
			t.Fatal("server started")
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error lacks %q: %v", w, err)
			}
		}
		t.Logf("refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	t.Run("WrongPassword", func(t *testing.T) {
		refused(t, n.flags("cassandra", writeFile(t, "pw", "not-the-password")), "password are incorrect", "--cassandra-password-file")
	})
	t.Run("NoPassword", func(t *testing.T) {
		args := []string{"--cassandra-tls-ca-file=" + n.ca}
		if n.mutual {
			args = append(args, "--cassandra-tls-cert-file="+n.cert, "--cassandra-tls-key-file="+n.key)
		}
		refused(t, args, "--cassandra-username")
	})
	t.Run("NoTLS", func(t *testing.T) {
		refused(t, []string{"--cassandra-username=cassandra", "--cassandra-password-file=" + superPW}, "--cassandra-tls-ca-file")
	})
	t.Run("WrongCA", func(t *testing.T) {
		other, _, _ := selfSigned(t, t.TempDir(), "another CA")
		args := []string{"--cassandra-username=cassandra", "--cassandra-password-file=" + superPW, "--cassandra-tls-ca-file=" + other}
		if n.mutual {
			args = append(args, "--cassandra-tls-cert-file="+n.cert, "--cassandra-tls-key-file="+n.key)
		}
		refused(t, args, "certificate signed by unknown authority", "--cassandra-tls-ca-file")
	})
	t.Run("NoClientCertificate", func(t *testing.T) {
		if !n.mutual {
			t.Skipf("the node does not require client certificates (%s)", envSecureMutual)
		}
		refused(t, []string{"--cassandra-username=cassandra", "--cassandra-password-file=" + superPW, "--cassandra-tls-ca-file=" + n.ca},
			"--cassandra-tls-cert-file")
	})
}

// appendAndRead appends one event to stream through the server at base
// and reads it back.
func appendAndRead(t *testing.T, base, stream string) {
	t.Helper()
	res, err := http.Post(base+"/v1/streams/"+stream+"/events", "application/json",
		strings.NewReader(`{"expected_version":"no_stream","events":[{"type":"Secured","data":{"n":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("append: %d %s", res.StatusCode, body)
	}
	res, err = http.Get(base + "/v1/streams/" + stream + "/events")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"type":"Secured","version":1`)) {
		t.Fatalf("read: %d %s", res.StatusCode, body)
	}
}

// secureSession is a session on the node as user, for set-up and clean-up.
func secureSession(t *testing.T, n secureNode, user, pw string) *gocql.Session {
	t.Helper()
	o := cassandra.DefaultOptions()
	o.Hosts, o.Keyspace, o.Username, o.Password = []string{n.host}, "system", user, pw
	o.TLS = &cassandra.TLSOptions{CAFile: n.ca}
	if n.mutual {
		o.TLS.CertFile, o.TLS.KeyFile = n.cert, n.key
	}
	c, err := cassandra.NewClusterConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = time.Minute
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("session as %s: %v", user, err)
	}
	t.Cleanup(s.Close)
	return s
}

func dropSecure(t *testing.T, n secureNode, keyspace string) {
	if err := secureSession(t, n, "cassandra", "cassandra").Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec(); err != nil {
		t.Logf("drop keyspace %s: %v", keyspace, err)
	}
}

// TestRefusesPaxosV1: against a node on paxos_variant v1
// (EVENTLOG_TEST_PAXOS_V1_CASSANDRA, its address: scripts/cassandra with
// JVM_EXTRA_OPTS="-Dcassandra.config.allow_system_properties=true
// -Dcassandra.settings.paxos_variant=v1"), the server refuses to serve the
// keyspace on either write path, and says why. Not in .ci/run (one more
// node start for a check TestPaxosVariantRefusal makes on the decision).
func TestRefusesPaxosV1(t *testing.T) {
	host := os.Getenv("EVENTLOG_TEST_PAXOS_V1_CASSANDRA")
	if host == "" {
		t.Skip("EVENTLOG_TEST_PAXOS_V1_CASSANDRA not set: no paxos_variant v1 node to test against")
	}
	o := cassandratest.Options(t)
	o.Hosts = []string{host}
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	// migrate itself runs on v1 (it only creates tables); serving does not.
	_, err := runMain(t, o.Keyspace, host, "--migrate")
	if !errors.Is(err, cassandra.ErrPaxosVariant) || !strings.Contains(err.Error(), "runs v1") {
		t.Fatalf("serve --migrate on a v1 node: %v, want ErrPaxosVariant saying v1", err)
	}
	t.Logf("refused: %v", err)
	if _, err := runMain(t, o.Keyspace, host); !errors.Is(err, cassandra.ErrPaxosVariant) || !strings.Contains(err.Error(), "runs v1") {
		t.Fatalf("serve on a migrated keyspace of a v1 node: %v, want ErrPaxosVariant saying v1", err)
	}
}
