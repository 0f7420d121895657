package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
)

// mustKeysServer is the API over a real store with API keys required and
// the admin key "root", whose token it returns.
func mustKeysServer(t *testing.T) (*testServer, string) {
	t.Helper()
	store, so := shardstoretest.NewStore(t, nil)
	ks, err := keystore.New(cassandratest.Session(t, so.Cassandra), so.Cassandra.SerialConsistency, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	root, rootToken, err := auth.NewKey("root", []string{"admin"}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.CreateKey(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(ks, auth.Options{})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	api, err := httpapi.New(store, httpapi.Config{Auth: a, Keys: ks, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(spectest.Handler(t, api))
	t.Cleanup(srv.Close)
	return &testServer{Server: srv}, rootToken
}

// TestKeys: keys create|list|revoke against a server that requires keys:
// the admin token makes a key whose token (the last line) works at once
// within its scopes, list shows it without any token, revoke makes the
// server refuse it; a token without the admin scope is refused (exit 7).
func TestKeys(t *testing.T) {
	ts, rootToken := mustKeysServer(t)
	as := func(token string, want int, args ...string) result {
		t.Helper()
		r := ts.cli(t, map[string]string{"EVENTLOG_TOKEN": token}, "", args...)
		if r.code != want {
			t.Fatalf("eventlog %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
		}
		return r
	}

	out := as(rootToken, exitOK, "keys", "create", "--name", "writer", "--scope", "append:user-*", "--scope", "read:user-*", "--expires", "720h").stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := lines[len(lines)-1]
	if !strings.HasPrefix(token, "evl_") {
		t.Fatalf("create: the last line is not the token:\n%s", out)
	}
	as(token, exitOK, "append", "user-1", "--type", "A", "--data", "1")
	as(token, exitUnauthorized, "append", "order-1", "--type", "A", "--data", "1")
	as(token, exitUnauthorized, "keys", "list") // no admin scope

	var keys []client.APIKey
	listed := as(rootToken, exitOK, "keys", "list", "-o", "json").stdout
	if err := json.Unmarshal([]byte(listed), &keys); err != nil {
		t.Fatalf("list: %v\n%s", err, listed)
	}
	var w *client.APIKey
	for i := range keys {
		if keys[i].Name == "writer" {
			w = &keys[i]
		}
	}
	if w == nil || w.Status != "active" || len(w.Scopes) != 2 || w.ExpiresAt.IsZero() || strings.Contains(listed, token) {
		t.Fatalf("list: %+v\n%s", keys, listed)
	}
	if table := as(rootToken, exitOK, "keys", "list").stdout; !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "writer") {
		t.Fatalf("list table:\n%s", table)
	}

	as(rootToken, exitOK, "keys", "revoke", "writer")
	as(token, exitUnauthorized, "append", "user-1", "--type", "A", "--data", "2")
	if table := as(rootToken, exitOK, "keys", "list").stdout; !strings.Contains(table, "revoked") {
		t.Fatalf("after revoke:\n%s", table)
	}
	as(rootToken, exitUsage, "keys", "create", "--name", "noscope")
	as(rootToken, exitInvalid, "keys", "create", "--name", "bad name!", "--scope", "admin")
}

// TestKeysCreateBadExpiryOrRate: a negative --expires or --rate-limit is
// refused (exit 5, the server's invalid_key) and makes no key. The client
// used to send only positive values, so such a key was created without
// any expiry or rate of its own: a key meant to be short-lived lived
// forever.
func TestKeysCreateBadExpiryOrRate(t *testing.T) {
	ts, rootToken := mustKeysServer(t)
	env := map[string]string{"EVENTLOG_TOKEN": rootToken}
	for _, tc := range []struct{ name, flag, value string }{
		{"NegativeExpiry", "--expires", "-5h"},
		{"NegativeRate", "--rate-limit", "-5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "bad-" + strings.ToLower(tc.name)
			r := ts.cli(t, env, "", "keys", "create", "--name", name, "--scope", "admin", tc.flag, tc.value)
			if r.code != exitInvalid || !strings.Contains(r.stderr, "invalid_key") {
				t.Fatalf("keys create %s %s: exit %d, want %d with invalid_key\nstdout: %s\nstderr: %s", tc.flag, tc.value, r.code, exitInvalid, r.stdout, r.stderr)
			}
			if listed := ts.cli(t, env, "", "keys", "list").stdout; strings.Contains(listed, name) {
				t.Fatalf("the refused key was made:\n%s", listed)
			}
		})
	}
}

// TestJSONOutputOmitsAbsentTimes: -o json and -o ndjson print what the
// server sent. A key without expiry or revocation and a group partition
// no member holds have no such time; the CLI printed
// "0001-01-01T00:00:00Z" for them (the client's zero time), which a
// script reads as a key that expired and was revoked in year 1.
func TestJSONOutputOmitsAbsentTimes(t *testing.T) {
	ts, rootToken := mustKeysServer(t)
	env := map[string]string{"EVENTLOG_TOKEN": rootToken}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		r := ts.cli(t, env, "", args...)
		if r.code != exitOK {
			t.Fatalf("eventlog %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}

	t.Run("Keys", func(t *testing.T) {
		for _, out := range []string{run(t, "keys", "list", "-o", "ndjson"), run(t, "keys", "list", "-o", "json")} {
			var keys []map[string]any
			if strings.HasPrefix(out, "[") {
				if err := json.Unmarshal([]byte(out), &keys); err != nil {
					t.Fatal(err)
				}
			} else {
				keys = ndjson[map[string]any](t, out)
			}
			if len(keys) != 1 || keys[0]["name"] != "root" {
				t.Fatalf("keys: %s", out)
			}
			for _, f := range []string{"expires_at", "revoked_at"} {
				if v, ok := keys[0][f]; ok {
					t.Errorf("root has no %s, printed as %v:\n%s", f, v, out)
				}
			}
		}
	})

	t.Run("GroupPartitions", func(t *testing.T) {
		c, err := client.New(client.Options{BaseURL: ts.URL, Token: rootToken})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := c.JoinGroup(ctx, "billing", client.JoinOptions{Feed: client.AllFeed, Member: "w-1"}); err != nil {
			t.Fatal(err)
		}
		if err := c.LeaveGroup(ctx, "billing", "w-1"); err != nil {
			t.Fatal(err)
		}
		out := run(t, "groups", "describe", "billing", "-o", "json")
		var g struct {
			Partitions []map[string]any `json:"partitions"`
		}
		if err := json.Unmarshal([]byte(out), &g); err != nil {
			t.Fatal(err)
		}
		if len(g.Partitions) == 0 {
			t.Fatalf("no partitions:\n%s", out)
		}
		for _, p := range g.Partitions {
			if v, ok := p["lease_until"]; ok && p["owner"] == "" {
				t.Fatalf("partition %v is free, its lease_until printed as %v", p["partition"], v)
			}
		}
	})
}

// TestTooManyRequestsIsExit4: a 429 (rate_limited, too_many_long_reads,
// too_many_subscriptions) says "later", not "invalid": exit 4, with the
// server unavailable, so that a script retries it. It was exit 5, "refused
// as invalid", which a script rightly does not retry.
func TestTooManyRequestsIsExit4(t *testing.T) {
	ts, rootToken := mustKeysServer(t)
	r := ts.cli(t, map[string]string{"EVENTLOG_TOKEN": rootToken}, "", "keys", "create", "--name", "slow", "--scope", "admin", "--rate-limit", "0.001")
	if r.code != exitOK {
		t.Fatalf("keys create: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	env := map[string]string{"EVENTLOG_TOKEN": lines[len(lines)-1]}
	// The key's bucket holds one request; the second waits 1,000 s.
	if r := ts.cli(t, env, "", "streams", "info", "user-1"); r.code != exitNotFound {
		t.Fatalf("first request: exit %d, want %d\n%s", r.code, exitNotFound, r.stderr)
	}
	r = ts.cli(t, env, "", "streams", "info", "user-1")
	if r.code != exitUnavailable || !strings.Contains(r.stderr, "rate_limited") {
		t.Fatalf("rate-limited request: exit %d, want %d with rate_limited\nstderr: %s", r.code, exitUnavailable, r.stderr)
	}
}
