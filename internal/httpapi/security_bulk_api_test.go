package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
)

// TestBulkStopsWhenKeyRevoked: a bulk request lives up to its deadline
// (minutes), reading lines as they come: a line read after its key was
// revoked is refused (401 unauthenticated in its result line) and not
// appended, as a new request with the key would be.
func TestBulkStopsWhenKeyRevoked(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, nil)
	admin := as.MustToken(t, "admin", 0, "admin")
	ingest := as.MustToken(t, "ingest", 0, "append:bk-*")
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		pw.Write([]byte(`{"stream":"bk-1","events":[{"type":"t","data":1}]}` + "\n"))
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if as.As(t, admin, "GET", "/v1/streams/bk-1", "").Status == http.StatusOK {
				break
			}
		}
		if r := as.As(t, admin, "DELETE", "/v1/admin/keys/ingest", ""); r.Status != http.StatusNoContent {
			t.Error(r)
		}
		pw.Write([]byte(`{"stream":"bk-1","events":[{"type":"t","data":2}]}` + "\n"))
	}()
	req, err := http.NewRequest("POST", as.URL+"/v1/events", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", ingest)
	res, err := as.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if res.StatusCode != http.StatusOK || len(lines) != 2 || !strings.Contains(lines[0], `"status":201`) ||
		!strings.Contains(lines[1], `"line":2`) || !strings.Contains(lines[1], `"code":"unauthenticated"`) {
		t.Fatalf("want line 1 appended and line 2, read after the key was revoked, refused: %d %s", res.StatusCode, b)
	}
	if r := as.As(t, admin, "GET", "/v1/streams/bk-1", ""); r.Status != http.StatusOK || r.JSON(t)["version"] != float64(1) {
		t.Fatalf("bk-1 after the bulk: %s, want version 1", r)
	}
}
