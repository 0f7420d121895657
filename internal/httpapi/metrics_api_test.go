package httpapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/httpapi"
)

func TestMetrics(t *testing.T) {
	ts := MustServer(t, nil)
	ts.MustAppend(t, "m-1", 3)
	MustProblem(t, ts.Append(t, "m-1", `{"expected_version":1,"events":[{"type":"t","data":1}]}`), 409, "wrong_expected_version")
	MustProblem(t, ts.Do(t, "GET", "/no/such/path/12345", nil), 404, "not_found")

	r := ts.Do(t, "GET", "/metrics", nil)
	if r.Status != 200 {
		t.Fatal(r)
	}
	body := string(r.Body)
	for _, want := range []string{
		`eventlog_http_requests_total{method="POST",route="/v1/streams/:stream/events",status="201"} 1`,
		`eventlog_http_requests_total{method="POST",route="/v1/streams/:stream/events",status="409"} 1`,
		`eventlog_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`eventlog_http_request_duration_seconds_count{method="POST",route="/v1/streams/:stream/events"} 2`,
		`eventlog_appended_events_total 3`,
		`eventlog_append_conflicts_total{code="wrong_expected_version"} 1`,
		`eventlog_append_conflicts_total{code="idempotency_conflict"} 0`,
		`eventlog_shard_commits_total`, // the store's metrics share the registry
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "/no/such/path") {
		t.Error("an unmatched path became a label")
	}
}

func TestOpenAPIServed(t *testing.T) {
	ts := MustServer(t, nil)
	r := ts.Do(t, "GET", "/openapi.json", nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	if !bytes.Equal(r.Body, httpapi.OpenAPI()) {
		t.Fatal("GET /openapi.json is not the embedded description")
	}
}
