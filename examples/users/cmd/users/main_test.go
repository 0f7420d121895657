package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/eventlog/eventlog/examples/users/internal/testenv"
)

// visibleWithin is the documented delay (README, "Eventual consistency")
// for the test timings: an event is in the feed once its append is
// committed, the projection polls every 20ms and writes in a few ms. The bound leaves room for a loaded 2-core CI machine.
const visibleWithin = 2 * time.Second

// MustMain starts the example on port 0 against a fresh eventlog server
// and a fresh read-model keyspace.
func MustMain(t *testing.T) *Main {
	t.Helper()
	el := testenv.MustEventlog(t)
	m := NewMain()
	m.Config.Listen = "127.0.0.1:0"
	m.Config.EventlogURL = el.URL
	m.Config.CassandraHosts = testenv.Hosts()
	m.Config.Keyspace = testenv.Keyspace(t)
	m.Config.SnapshotEvery = 3
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		m.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if err := m.Run(testenv.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// reply is an HTTP answer with its JSON body.
type reply struct {
	Status int
	Body   map[string]any
}

func call(t *testing.T, method, u string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(testenv.Context(t), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	r := reply{Status: res.StatusCode}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &r.Body); err != nil {
		t.Fatalf("%s %s: %d %q: %v", method, u, res.StatusCode, b, err)
	}
	return r
}

// MustCommand sends a command and checks its status.
func MustCommand(t *testing.T, method, u string, body any, status int) reply {
	t.Helper()
	r := call(t, method, u, body)
	if r.Status != status {
		t.Fatalf("%s %s: %d %v, want %d", method, u, r.Status, r.Body, status)
	}
	return r
}

// Eventually polls GET u until ok accepts the answer and returns how long
// that took; past visibleWithin the test fails.
func Eventually(t *testing.T, u string, ok func(reply) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := call(t, "GET", u, nil)
		if ok(r) {
			return time.Since(start)
		}
		if time.Since(start) > visibleWithin {
			t.Fatalf("GET %s still %d %v after %v", u, r.Status, r.Body, visibleWithin)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// at accepts a user at or past version v.
func at(v float64) func(reply) bool {
	return func(r reply) bool { return r.Status == 200 && r.Body["version"].(float64) >= v }
}

func status(s int) func(reply) bool { return func(r reply) bool { return r.Status == s } }

// TestEndToEnd drives the example over its HTTP API, as the README does,
// and checks that each command's effect reaches the query endpoints within
// the documented delay.
func TestEndToEnd(t *testing.T) {
	m := MustMain(t)
	base := m.URL()
	byEmail := func(e string) string { return base + "/users?email=" + url.QueryEscape(e) }
	var delays []time.Duration

	created := MustCommand(t, "POST", base+"/users", map[string]string{"name": "Ada", "email": "Ada@Example.com"}, 201)
	id, v := created.Body["id"].(string), created.Body["version"].(float64)
	if id == "" || v != 1 {
		t.Fatalf("create: %v", created.Body)
	}
	user := base + "/users/" + id
	delays = append(delays, Eventually(t, user, at(v)))
	if r := call(t, "GET", user, nil); r.Body["name"] != "Ada" || r.Body["email"] != "ada@example.com" {
		t.Fatalf("GET after create: %v", r.Body)
	}
	delays = append(delays, Eventually(t, byEmail("ada@example.com"), at(v)))

	t.Run("Rejected", func(t *testing.T) {
		MustCommand(t, "POST", base+"/users", map[string]string{"name": "Eve", "email": "ADA@example.com"}, 409)
		MustCommand(t, "POST", base+"/users", map[string]string{"name": "", "email": "eve@example.com"}, 400)
		MustCommand(t, "POST", base+"/users", map[string]string{"name": "Eve", "email": "eve"}, 400)
		MustCommand(t, "PATCH", base+"/users/nobody", map[string]string{"name": "X"}, 404)
		MustCommand(t, "PATCH", user, map[string]string{}, 400)
	})

	updated := MustCommand(t, "PATCH", user, map[string]string{"name": "Ada Lovelace", "email": "ada@lovelace.org"}, 200)
	v = updated.Body["version"].(float64)
	delays = append(delays, Eventually(t, user, at(v)))
	if r := call(t, "GET", user, nil); r.Body["name"] != "Ada Lovelace" || r.Body["email"] != "ada@lovelace.org" {
		t.Fatalf("GET after update: %v", r.Body)
	}
	Eventually(t, byEmail("ada@lovelace.org"), at(v))
	if r := call(t, "GET", byEmail("ada@example.com"), nil); r.Status != 404 {
		t.Fatalf("old address still found: %d %v", r.Status, r.Body)
	}

	// A run of renames, each checked for visibility: enough samples to
	// see the delay's spread, and past the snapshot interval.
	for i := range 8 {
		r := MustCommand(t, "PATCH", user, map[string]string{"name": "Ada " + string(rune('A'+i))}, 200)
		delays = append(delays, Eventually(t, user, at(r.Body["version"].(float64))))
	}

	deleted := MustCommand(t, "DELETE", user, nil, 200)
	if deleted.Body["version"].(float64) != v+9 {
		t.Fatalf("delete: %v", deleted.Body)
	}
	delays = append(delays, Eventually(t, user, status(410)))
	Eventually(t, byEmail("ada@lovelace.org"), status(404))
	MustCommand(t, "PATCH", user, map[string]string{"name": "Ghost"}, 410)
	MustCommand(t, "DELETE", user, nil, 410)
	// The address is free again.
	MustCommand(t, "POST", base+"/users", map[string]string{"name": "Ada II", "email": "ada@lovelace.org"}, 201)

	slices.Sort(delays)
	t.Logf("command -> query visibility over %d commands: median %v, max %v (bound %v)",
		len(delays), delays[len(delays)/2], delays[len(delays)-1], visibleWithin)
}
