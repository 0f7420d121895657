package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/log"
)

// MustRunMain starts the whole server on port 0 with args (plus the test
// keyspace and hosts) and closes it when the test ends.
func MustRunMain(tb testing.TB, o cassandra.Options, args ...string) *Main {
	tb.Helper()
	return mustRunMainLogged(tb, o, slog.New(slog.NewTextHandler(io.Discard, nil)), args...)
}

// mustRunMainLogged is MustRunMain logging to logger.
func mustRunMainLogged(tb testing.TB, o cassandra.Options, logger *slog.Logger, args ...string) *Main {
	tb.Helper()
	m := NewMain()
	m.Logger = logger
	args = append([]string{"--listen=127.0.0.1:0", "--keyspace=" + o.Keyspace, "--cassandra-hosts=" + strings.Join(o.Hosts, ",")}, args...)
	if err := m.Config.ParseFlags("server", args, env(nil), io.Discard); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		m.Close()
		tb.Fatalf("run: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return m
}

// waitFor polls cond until it holds, failing the test if it does not
// within timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMainMigratesAndServes(t *testing.T) {
	o := cassandratest.Options(t) // a keyspace that does not exist yet
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	m := MustRunMain(t, o, "--migrate")
	base := "http://" + m.Addr()

	res, err := http.Post(base+"/v1/streams/main-1/events", "application/json",
		strings.NewReader(`{"expected_version":"no_stream","events":[{"type":"hello","data":{"n":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || !bytes.Contains(body, []byte(`"last_version":1`)) {
		t.Fatalf("append: %d %s", res.StatusCode, body)
	}

	res, err = http.Get(base + "/v1/streams/main-1/events")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Events []struct {
			Type    string          `json:"type"`
			Version int64           `json:"version"`
			Data    json.RawMessage `json:"data"`
		} `json:"events"`
	}
	err = json.NewDecoder(res.Body).Decode(&page)
	res.Body.Close()
	if err != nil || len(page.Events) != 1 || page.Events[0].Version != 1 || page.Events[0].Type != "hello" || string(page.Events[0].Data) != `{"n":1}` {
		t.Fatalf("read: %v %+v", err, page)
	}

	for path, want := range map[string]string{"/readyz": `"ready"`, "/metrics": "eventlog_shard_commits_total", "/healthz": `"ok"`} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Contains(b, []byte(want)) {
			t.Fatalf("%s: %d, body lacks %s", path, res.StatusCode, want)
		}
	}
}

// TestMainGracefulShutdown closes the server while a bulk append is still
// sending lines: new connections are refused, the in-flight
// request runs to its end (every line appended and answered), then Close
// returns.
func TestMainGracefulShutdown(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	m := MustRunMain(t, o, "--shutdown-timeout=2m")
	store := m.store
	base := "http://" + m.Addr()

	pr, pw := io.Pipe()
	defer pw.Close() // should the test stop early: ends the request, so Close need not wait
	type result struct {
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.Post(base+"/v1/events", "application/x-ndjson", pr)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		done <- result{b, err}
	}()
	line := `{"stream":"shut-1","events":[{"type":"t","data":1}]}` + "\n"
	for range 3 {
		if _, err := io.WriteString(pw, line); err != nil {
			t.Fatal(err)
		}
	}
	// The request is in flight once its first lines are stored (the
	// handler then waits for the next line).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor(t, time.Minute, "the first 3 lines to be appended", func() bool {
		info, err := store.Info(ctx, "shut-1")
		return err == nil && info.Version == 3
	})
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	waitFor(t, time.Minute, "new connections to be refused during shutdown", func() bool {
		c, err := net.DialTimeout("tcp", m.Addr(), 5*time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the in-flight request ended", err)
	default:
	}
	for range 3 {
		if _, err := io.WriteString(pw, line); err != nil {
			t.Fatal(err)
		}
	}
	pw.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("in-flight request: %v", r.err)
	}
	if got := bytes.Count(r.body, []byte(`"status":201`)); got != 6 {
		t.Fatalf("%d appends answered 201, want 6: %s", got, r.body)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// The server's store is closed: another instance reads.
	info, err := shardstoretest.Reopen(t, shardstore.Options{Cassandra: o, LeaseTTL: time.Second}).Info(ctx, "shut-1")
	if err != nil || info.Version != 6 {
		t.Fatalf("stream after shutdown: version %d, %v; want 6", info.Version, err)
	}
}

func TestMainRefusesUnknownSchema(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	sess := cassandratest.Session(t, o)
	if err := sess.Query(`INSERT INTO schema_migrations (version, name) VALUES (999, 'future')`).Exec(); err != nil {
		t.Fatal(err)
	}
	m := NewMain()
	var logs bytes.Buffer
	m.Stderr = &logs
	if err := m.Config.ParseFlags("server", []string{"--listen=127.0.0.1:0", "--keyspace=" + o.Keyspace,
		"--cassandra-hosts=" + strings.Join(o.Hosts, ",")}, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background())
	defer m.Close()
	if !errors.Is(err, cassandra.ErrSchemaMismatch) {
		t.Fatalf("run on an unknown schema: %v, want ErrSchemaMismatch", err)
	}
	if m.Addr() != "" {
		t.Fatalf("listening on %s despite the schema mismatch", m.Addr())
	}
	// Newer than the binary: upgrading it is what helps, not migrating.
	if !errors.Is(err, cassandra.ErrSchemaNewer) || !strings.Contains(logs.String(), "upgrade this server") || strings.Contains(logs.String(), "run `server migrate`") {
		t.Fatalf("log does not tell the operator what to do: %s", logs.String())
	}
}

// TestMigrateRefusesNewerSchema: migrating a keyspace that a newer binary
// migrated, with `server migrate` or `serve --migrate`, fails saying to
// upgrade the binary, and writes nothing. It used to exit 0 saying
// "schema up to date", and serve then refused, telling the operator to
// run the very migrate that had just succeeded.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	sess := cassandratest.Session(t, o)
	if err := sess.Query(`INSERT INTO schema_migrations (version, name) VALUES (?, 'future')`, cassandra.LatestSchemaVersion()+1).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := sess.Query(`DELETE FROM keyspace_config WHERE id = 0`).Exec(); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--listen=127.0.0.1:0", "--keyspace=" + o.Keyspace, "--cassandra-hosts=" + strings.Join(o.Hosts, ",")}
	for _, args := range [][]string{append([]string{"migrate"}, flags...), append([]string{"serve", "--migrate"}, flags...)} {
		var stderr bytes.Buffer
		code := run(context.Background(), func() {}, args, env(nil), io.Discard, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), "upgrade the server") {
			t.Errorf("%s on a newer keyspace: exit %d, stderr %s; want a failure saying to upgrade", args[0], code, stderr.String())
		}
	}
	var n int
	if err := sess.Query(`SELECT count(*) FROM keyspace_config`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("keyspace_config: %d rows, %v; want none written", n, err)
	}
}

func TestMigrateCommand(t *testing.T) {
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	args := []string{"migrate", "--keyspace=" + o.Keyspace, "--cassandra-hosts=" + strings.Join(o.Hosts, ",")}
	if code := run(context.Background(), func() {}, args, env(nil), io.Discard, io.Discard); code != 0 {
		t.Fatalf("migrate: exit %d", code)
	}
	// The keyspace now opens, and a second migrate is a no-op.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o})
	if err != nil {
		t.Fatalf("open after migrate: %v", err)
	}
	s.Close()
	if code := run(context.Background(), func() {}, args, env(nil), io.Discard, io.Discard); code != 0 {
		t.Fatalf("second migrate: exit %d", code)
	}
}

// TestMainMissingKeyspaceSaysMigrate: serving a keyspace that does not
// exist (migrate never ran, or a typo in --keyspace) is ErrSchemaMismatch
// with what to do, for serve and keys alike, and creates nothing. gocql
// reports it as "no connections were made", as for a Cassandra it cannot
// reach: the server said "store unavailable", sending the operator to
// look for a network fault.
func TestMainMissingKeyspaceSaysMigrate(t *testing.T) {
	o := cassandratest.Options(t) // a fresh name, never created
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	hosts := "--cassandra-hosts=" + strings.Join(o.Hosts, ",")

	m := NewMain()
	var logs bytes.Buffer
	m.Stderr = &logs
	if err := m.Config.ParseFlags("server", []string{"--listen=127.0.0.1:0", "--keyspace=" + o.Keyspace, hosts}, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background())
	defer m.Close()
	if !errors.Is(err, cassandra.ErrSchemaMismatch) || errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("serve on a missing keyspace: %v, want ErrSchemaMismatch (not unavailable)", err)
	}
	for _, want := range []string{o.Keyspace + " does not exist", "server migrate", "--migrate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("serve: %q does not say %q", err, want)
		}
	}

	var stderr bytes.Buffer
	if code := run(context.Background(), func() {}, []string{"keys", "list", "--keyspace=" + o.Keyspace, hosts}, env(nil), io.Discard, &stderr); code == 0 ||
		!strings.Contains(stderr.String(), o.Keyspace+" does not exist") {
		t.Errorf("keys list on a missing keyspace: exit %d, stderr %s", code, stderr.String())
	}

	// Nothing was created on the way.
	sess := cassandratest.Session(t, cassandra.Options{Hosts: o.Hosts, Keyspace: "system_schema"})
	var n int
	if err := sess.Query(`SELECT count(*) FROM keyspaces WHERE keyspace_name = ?`, o.Keyspace).Scan(&n); err != nil || n != 0 {
		t.Fatalf("keyspace %s: count %d, %v; want none", o.Keyspace, n, err)
	}
}

// TestMigrateKeepsExistingShards: a keyspace made with --shards=4 is
// migrated again, and served with --migrate, without --shards (an
// upgrade's `server migrate`, a restart of a docker-compose service): the
// keyspace's count stands. The flag's default was 8, taken for a request
// for 8 shards, so both failed ("has 4 shards, asked for 8") after the
// migrations were applied. A count given and different is still refused,
// before any migration is applied.
func TestMigrateKeepsExistingShards(t *testing.T) {
	o := cassandratest.NewKeyspace(t, func(o *cassandra.Options) { o.Shards = 4 })
	flags := []string{"--keyspace=" + o.Keyspace, "--cassandra-hosts=" + strings.Join(o.Hosts, ",")}
	var stderr bytes.Buffer
	if code := run(context.Background(), func() {}, append([]string{"migrate"}, flags...), env(nil), io.Discard, &stderr); code != 0 {
		t.Fatalf("migrate without --shards: exit %d: %s", code, stderr.String())
	}
	m := MustRunMain(t, o, "--migrate")
	if got := len(m.store.Owned()); got > 4 {
		t.Fatalf("serving %d shards of a 4-shard keyspace", got)
	}
	// The newest migration (comments only) as if not applied yet.
	sess := cassandratest.Session(t, o)
	latest := cassandra.LatestSchemaVersion()
	if err := sess.Query(`DELETE FROM schema_migrations WHERE version = ?`, latest).Exec(); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run(context.Background(), func() {}, append([]string{"migrate", "--shards=8"}, flags...), env(nil), io.Discard, &stderr); code == 0 ||
		!strings.Contains(stderr.String(), "has 4 shards, asked for 8") {
		t.Fatalf("migrate --shards=8 on a 4-shard keyspace: exit %d: %s", code, stderr.String())
	}
	var n int
	if err := sess.Query(`SELECT count(*) FROM schema_migrations WHERE version = ?`, latest).Scan(&n); err != nil || n != 0 {
		t.Fatalf("migration %d recorded (%d, %v) by a migrate refused for its shard count", latest, n, err)
	}
}
