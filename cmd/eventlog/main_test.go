package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
)

// testServer is the real HTTP API over a real Cassandra store in a
// keyspace of its own, on a loopback port; its traffic is checked against
// the OpenAPI description.
type testServer struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string // Authorization headers received
}

func mustServer(tb testing.TB) *testServer {
	tb.Helper()
	store, _ := shardstoretest.NewStore(tb, nil)
	api, err := httpapi.New(store, httpapi.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{}
	h := spectest.Handler(tb, api)
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.auths = append(ts.auths, r.Header.Get("Authorization"))
		ts.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	tb.Cleanup(ts.Close)
	return ts
}

// result is one finished command line.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command line against ts with env (never the user's config
// file: EVENTLOG_CONFIG is an empty one unless env sets it).
func (ts *testServer) cli(tb testing.TB, env map[string]string, stdin string, args ...string) result {
	tb.Helper()
	return runCLI(tb, env, stdin, append([]string{"--url", ts.URL}, args...)...)
}

func runCLI(tb testing.TB, env map[string]string, stdin string, args ...string) result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return runCLIContext(ctx, tb, env, stdin, args...)
}

func runCLIContext(ctx context.Context, tb testing.TB, env map[string]string, stdin string, args ...string) result {
	tb.Helper()
	empty := filepath.Join(tb.TempDir(), "empty.json")
	if err := os.WriteFile(empty, []byte("{}"), 0o600); err != nil {
		tb.Fatal(err)
	}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "EVENTLOG_CONFIG" {
			return empty
		}
		return ""
	}
	var out, errb bytes.Buffer
	code := run(ctx, args, getenv, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// mustRun runs args and fails unless the exit code is want.
func (ts *testServer) mustRun(tb testing.TB, want int, args ...string) result {
	tb.Helper()
	r := ts.cli(tb, nil, "", args...)
	if r.code != want {
		tb.Fatalf("eventlog %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// ndjson decodes one JSON object per line.
func ndjson[T any](tb testing.TB, s string) []T {
	tb.Helper()
	var out []T
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			tb.Fatalf("line %q: %v", line, err)
		}
		out = append(out, v)
	}
	return out
}

func versions(evs []client.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

func sameInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAppendReadAndExitCodes(t *testing.T) {
	ts := mustServer(t)

	r := ts.mustRun(t, exitOK, "append", "user-1", "--type", "UserCreated", "--data", `{"name":"Ada"}`,
		"--metadata", `{"by":"cli"}`, "--expected", "no_stream", "-o", "json")
	var res client.AppendResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("append output: %v: %s", err, r.stdout)
	}
	if res.FirstVersion != 1 || res.LastVersion != 1 || res.Duplicate {
		t.Fatalf("append result %+v", res)
	}

	// Several events from stdin, one append.
	r = ts.cli(t, nil, "{\"type\":\"A\",\"data\":2}\n\n{\"type\":\"B\",\"data\":{\"n\":3},\"id\":\"0190a1b2-0000-7000-8000-000000000003\"}\n",
		"append", "user-1", "--expected", "1", "-o", "ndjson")
	if r.code != exitOK {
		t.Fatalf("append from stdin: %d %s", r.code, r.stderr)
	}
	if res := ndjson[client.AppendResult](t, r.stdout); len(res) != 1 || res[0].FirstVersion != 2 || res[0].LastVersion != 3 {
		t.Fatalf("append from stdin: %s", r.stdout)
	}

	t.Run("ReadNDJSON", func(t *testing.T) {
		evs := ndjson[client.Event](t, ts.mustRun(t, exitOK, "read", "user-1", "-o", "ndjson").stdout)
		if got := versions(evs); !sameInts(got, []int64{1, 2, 3}) {
			t.Fatalf("versions %v", got)
		}
		if evs[0].Type != "UserCreated" || string(evs[0].Data) != `{"name":"Ada"}` || string(evs[0].Metadata) != `{"by":"cli"}` {
			t.Fatalf("event 1: %+v", evs[0])
		}
	})
	t.Run("ReadBackwardRange", func(t *testing.T) {
		var evs []client.Event
		if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "read", "user-1", "--backward", "--from", "2", "-o", "json").stdout), &evs); err != nil {
			t.Fatal(err)
		}
		if got := versions(evs); !sameInts(got, []int64{3, 2}) {
			t.Fatalf("versions %v", got)
		}
		evs = ndjson[client.Event](t, ts.mustRun(t, exitOK, "read", "user-1", "--limit", "2", "-o", "ndjson").stdout)
		if got := versions(evs); !sameInts(got, []int64{1, 2}) {
			t.Fatalf("--limit 2: versions %v", got)
		}
	})
	t.Run("ReadTable", func(t *testing.T) {
		out := ts.mustRun(t, exitOK, "read", "user-1").stdout
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "VERSION") || !strings.Contains(lines[1], "UserCreated") || !strings.Contains(lines[3], `{"n":3}`) {
			t.Fatalf("table:\n%s", out)
		}
	})
	t.Run("Duplicate", func(t *testing.T) {
		r := ts.mustRun(t, exitOK, "append", "user-1", "--type", "B", "--data", `{"n":3}`, "--id", "0190a1b2-0000-7000-8000-000000000004", "-o", "json")
		r2 := ts.mustRun(t, exitOK, "append", "user-1", "--type", "B", "--data", `{"n":3}`, "--id", "0190a1b2-0000-7000-8000-000000000004", "-o", "json")
		var a, b client.AppendResult
		_ = json.Unmarshal([]byte(r.stdout), &a)
		_ = json.Unmarshal([]byte(r2.stdout), &b)
		if a.Duplicate || !b.Duplicate || a.FirstVersion != 4 || b.FirstVersion != 4 {
			t.Fatalf("first %+v, retry %+v", a, b)
		}
	})
	t.Run("ExitNotFound", func(t *testing.T) {
		r := ts.mustRun(t, exitNotFound, "read", "nobody-1")
		if !strings.Contains(r.stderr, "stream_not_found") {
			t.Fatalf("stderr: %s", r.stderr)
		}
		ts.mustRun(t, exitNotFound, "streams", "info", "nobody-1")
		ts.mustRun(t, exitNotFound, "groups", "describe", "nogroup")
	})
	t.Run("ExitConflict", func(t *testing.T) {
		r := ts.mustRun(t, exitConflict, "append", "user-1", "--type", "X", "--data", "1", "--expected", "no_stream")
		if !strings.Contains(r.stderr, "wrong_expected_version") || !strings.Contains(r.stderr, "version 4") {
			t.Fatalf("stderr: %s", r.stderr)
		}
	})
	t.Run("ExitInvalid", func(t *testing.T) {
		r := ts.mustRun(t, exitInvalid, "append", "bad id", "--type", "X", "--data", "1")
		if !strings.Contains(r.stderr, "invalid_stream_id") {
			t.Fatalf("stderr: %s", r.stderr)
		}
		ts.mustRun(t, exitInvalid, "state", "user-1", "--at", "99")
	})
	t.Run("ExitUsage", func(t *testing.T) {
		ts.mustRun(t, exitUsage, "read")
		ts.mustRun(t, exitUsage, "append", "user-1", "--type", "X", "--data", "{not json")
		ts.mustRun(t, exitUsage, "append", "user-1", "--type", "X", "--data", "1", "--expected", "soon")
		ts.mustRun(t, exitUsage, "read", "user-1", "--no-such-flag")
		ts.mustRun(t, exitUsage, "read", "user-1", "-o", "yaml")
	})
	t.Run("ExitUnavailable", func(t *testing.T) {
		ln := httptest.NewServer(http.NotFoundHandler())
		url := ln.URL
		ln.Close() // nothing listens there any more
		r := runCLI(t, nil, "", "--url", url, "--timeout", "2s", "streams", "info", "user-1")
		if r.code != exitUnavailable {
			t.Fatalf("exit %d, want %d: %s", r.code, exitUnavailable, r.stderr)
		}
	})
}

func TestStateSnapshotsInfo(t *testing.T) {
	ts := mustServer(t)
	for i, typ := range []string{"Opened", "Deposited", "Deposited"} {
		ts.mustRun(t, exitOK, "append", "acct-1", "--type", typ, "--data", `{"n":`+string(rune('1'+i))+`}`)
	}
	r := ts.cli(t, nil, `{"balance":2}`, "snapshot", "put", "acct-1", "2", "-o", "json")
	if r.code != exitOK {
		t.Fatalf("snapshot put: %d %s", r.code, r.stderr)
	}
	var info client.SnapshotInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.Version != 2 || info.Compression != "zstd" {
		t.Fatalf("snapshot put: %v %s", err, r.stdout)
	}
	ts.mustRun(t, 5, "snapshot", "put", "acct-1", "9", "--state", "{}") // above the head: 422

	var snap client.Snapshot
	if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "snapshot", "get", "acct-1", "-o", "json").stdout), &snap); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, snap.State); err != nil || snap.Version != 2 || compact.String() != `{"balance":2}` {
		t.Fatalf("snapshot get: %+v", snap)
	}
	ts.mustRun(t, exitNotFound, "snapshot", "get", "acct-1", "--max-version", "1")

	var st client.State
	if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "state", "acct-1", "-o", "json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != 3 || st.Snapshot == nil || st.Snapshot.Version != 2 || !sameInts(versions(st.Events), []int64{3}) {
		t.Fatalf("state: %+v", st)
	}
	if out := ts.mustRun(t, exitOK, "state", "acct-1", "--at", "1").stdout; !strings.Contains(out, "none") || !strings.Contains(out, "Opened") {
		t.Fatalf("state --at 1 table:\n%s", out)
	}

	var si struct {
		Version  int64  `json:"version"`
		Category string `json:"category"`
		Snapshot *int64 `json:"latest_snapshot_version"`
	}
	if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "streams", "info", "acct-1", "-o", "json").stdout), &si); err != nil {
		t.Fatal(err)
	}
	if si.Version != 3 || si.Category != "acct" || si.Snapshot == nil || *si.Snapshot != 2 {
		t.Fatalf("streams info: %+v", si)
	}
	if out := ts.mustRun(t, exitOK, "health").stdout; out != "ok\n" {
		t.Fatalf("health: %q", out)
	}
}

// TestTail follows a stream and a feed live: events appended after the
// tail started arrive, and a feed tail resumes after a printed position.
func TestTail(t *testing.T) {
	ts := mustServer(t)
	ts.mustRun(t, exitOK, "append", "cart-1", "--type", "Added", "--data", "1")

	t.Run("StreamLive", func(t *testing.T) {
		done := make(chan result, 1)
		go func() { done <- ts.cli(t, nil, "", "tail", "cart-1", "--count", "2", "-o", "ndjson") }()
		time.Sleep(500 * time.Millisecond) // the tail has caught up and waits
		ts.mustRun(t, exitOK, "append", "cart-1", "--type", "Added", "--data", "2")
		select {
		case r := <-done:
			if r.code != exitOK {
				t.Fatalf("tail: %d %s", r.code, r.stderr)
			}
			if got := versions(ndjson[client.Event](t, r.stdout)); !sameInts(got, []int64{1, 2}) {
				t.Fatalf("versions %v", got)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("tail did not see the live append")
		}
	})

	t.Run("FeedResume", func(t *testing.T) {
		ts.mustRun(t, exitOK, "append", "cart-2", "--type", "Added", "--data", "3")
		// The category feed holds cart-1's two events and cart-2's one,
		// once the watermark passes them.
		var evs []client.FeedEvent
		deadline := time.Now().Add(30 * time.Second)
		for len(evs) < 3 && time.Now().Before(deadline) {
			evs = ndjson[client.FeedEvent](t, ts.mustRun(t, exitOK, "tail", "--feed", "category/cart", "--exit", "-o", "ndjson").stdout)
		}
		if len(evs) != 3 {
			t.Fatalf("feed: %d events, want 3", len(evs))
		}
		r := ts.mustRun(t, exitOK, "tail", "--feed", "category/cart", "--from", evs[0].Position, "--count", "2", "-o", "ndjson")
		rest := ndjson[client.FeedEvent](t, r.stdout)
		if len(rest) != 2 || rest[0].Position != evs[1].Position || rest[1].Position != evs[2].Position {
			t.Fatalf("resumed after %s: %+v", evs[0].Position, rest)
		}
		if out := ts.mustRun(t, exitOK, "tail", "--feed", "all", "--exit").stdout; !strings.HasPrefix(out, "POSITION\tSTREAM") || !strings.Contains(out, "cart-2") {
			t.Fatalf("feed table:\n%s", out)
		}
		ts.mustRun(t, exitInvalid, "tail", "--feed", "nope/x", "--exit")
		ts.mustRun(t, exitUsage, "tail")
	})
}

func TestGroups(t *testing.T) {
	ts := mustServer(t)
	c, err := client.New(client.Options{BaseURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.JoinGroup(ctx, "billing", client.JoinOptions{Feed: client.CategoryFeed("user"), Member: "w-1"}); err != nil {
		t.Fatal(err)
	}
	var g client.GroupInfo
	if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "groups", "describe", "billing", "-o", "json").stdout), &g); err != nil {
		t.Fatal(err)
	}
	if g.Feed != "category/user" || len(g.Members) != 1 || g.Members[0].Member != "w-1" || len(g.Partitions) != 4 {
		t.Fatalf("describe: %+v", g)
	}
	if out := ts.mustRun(t, exitOK, "groups", "describe", "billing").stdout; !strings.Contains(out, "w-1") || !strings.Contains(out, "PARTITION") {
		t.Fatalf("describe table:\n%s", out)
	}
	ts.mustRun(t, exitOK, "groups", "evict", "billing", "w-1")
	if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "groups", "describe", "billing", "-o", "json").stdout), &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Members) != 0 {
		t.Fatalf("after leave: members %+v", g.Members)
	}
}

// TestSettings: --url and --token come from the flag, else the
// environment, else the config file; the token is sent as a bearer token.
func TestSettings(t *testing.T) {
	ts := mustServer(t)
	ts.mustRun(t, exitOK, "append", "cfg-1", "--type", "A", "--data", "1")
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"url":"`+ts.URL+`","token":"from-file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	lastAuth := func() string {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return ts.auths[len(ts.auths)-1]
	}
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		wantAuth string
	}{
		{"ConfigFile", map[string]string{"EVENTLOG_CONFIG": cfg}, nil, "Bearer from-file"},
		{"EnvBeatsFile", map[string]string{"EVENTLOG_CONFIG": cfg, "EVENTLOG_TOKEN": "from-env"}, nil, "Bearer from-env"},
		{"FlagBeatsEnv", map[string]string{"EVENTLOG_CONFIG": cfg, "EVENTLOG_TOKEN": "from-env"}, []string{"--token", "from-flag"}, "Bearer from-flag"},
		{"EnvURL", map[string]string{"EVENTLOG_URL": ts.URL}, nil, ""},
		{"ConfigFlag", nil, []string{"--config", cfg}, "Bearer from-file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, c.env, "", append(c.args, "streams", "info", "cfg-1")...)
			if r.code != exitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if got := lastAuth(); got != c.wantAuth {
				t.Fatalf("Authorization %q, want %q", got, c.wantAuth)
			}
		})
	}
	t.Run("MissingConfigFlag", func(t *testing.T) {
		if r := runCLI(t, nil, "", "--config", filepath.Join(t.TempDir(), "nope.json"), "health"); r.code != exitUsage {
			t.Fatalf("exit %d, want %d", r.code, exitUsage)
		}
	})
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := runCLI(t, nil, "", "completion", shell)
		if r.code != exitOK || !strings.Contains(r.stdout, "eventlog") {
			t.Fatalf("completion %s: exit %d, %d bytes: %s", shell, r.code, len(r.stdout), r.stderr)
		}
	}
	// Cobra's hidden completion command answers the shell scripts.
	r := runCLI(t, nil, "", "__complete", "tail", "--feed", "")
	if r.code != exitOK || !strings.Contains(r.stdout, "category/") {
		t.Fatalf("__complete: %d %q", r.code, r.stdout)
	}
}

// TestTailStreamFromIsAVersion: a stream's --from is a whole version >= 1;
// anything else is a usage error (exit 1) before any request. It was read
// with fmt.Sscan, which stops at the first non-digit, so "2abc" or "3 4"
// tailed from version 2 or 3 as if given that.
func TestTailStreamFromIsAVersion(t *testing.T) {
	for _, from := range []string{"2abc", "3 4", "1.5", "0", "-1", "x"} {
		// No server listens there: a request would be exit 4.
		r := runCLI(t, nil, "", "--url", "http://127.0.0.1:1", "tail", "user-1", "--from", from, "--exit")
		if r.code != exitUsage || !strings.Contains(r.stderr, "--from") {
			t.Errorf("tail --from %q: exit %d, want %d (usage)\nstderr: %s", from, r.code, exitUsage, r.stderr)
		}
	}
}

// TestSettingsEmptyConfigFile: an empty config file (made with touch, or
// emptied) holds no settings, like a missing one. It failed every
// command with "config file …: EOF", exit 1.
func TestSettingsEmptyConfigFile(t *testing.T) {
	for _, content := range []string{"", " \n"} {
		cfg := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		a := &app{getenv: func(k string) string {
			if k == "EVENTLOG_CONFIG" {
				return cfg
			}
			return ""
		}}
		s, err := a.settings()
		if err != nil || s.URL != client.DefaultBaseURL || s.Token != "" {
			t.Fatalf("config file %q: %+v, %v; want the defaults", content, s, err)
		}
	}
}

// TestTimeoutSaysSo: a command cut by --timeout (30 s by default, the
// whole of a read's replay included) says that it was the CLI's own bound
// and how to lift it; it said only "context deadline exceeded", which
// reads as the server failing.
func TestTimeoutSaysSo(t *testing.T) {
	ts := mustServer(t)
	ts.mustRun(t, exitOK, "append", "slow-1", "--type", "A", "--data", "1")
	r := ts.cli(t, nil, "", "--timeout", "1ns", "read", "slow-1")
	if r.code != exitUnavailable || !strings.Contains(r.stderr, "--timeout 1ns") || !strings.Contains(r.stderr, "--timeout 0") {
		t.Fatalf("read past --timeout: exit %d, want %d, saying --timeout\nstderr: %s", r.code, exitUnavailable, r.stderr)
	}
}
