package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// TestMainServesConsole checks the wiring: the console is at /ui by
// default, without a key even when keys are required, and --console=false
// removes it.
func TestMainServesConsole(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	get := func(base, path string) (int, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	m := MustRunMain(t, o, "--auth=required")
	base := "http://" + m.Addr()
	if code, body := get(base, "/ui/"); code != http.StatusOK || !strings.Contains(body, "eventlog console") {
		t.Fatalf("GET /ui/ with keys required: %d %.200s", code, body)
	}
	if code, _ := get(base, "/v1/streams/ui-1"); code != http.StatusUnauthorized {
		t.Fatalf("GET /v1/streams/ui-1 without a key: %d, want 401", code)
	}

	off := MustRunMain(t, o, "--console=false")
	if code, _ := get("http://"+off.Addr(), "/ui/"); code != http.StatusNotFound {
		t.Fatalf("GET /ui/ with --console=false: %d, want 404", code)
	}
}
