package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventlog/eventlog/internal/httpapi"
)

// TestSpanNameMethodBounded: as for the metrics, a made-up method must
// not name a request's span (span names are meant to be few; a tracing
// backend indexes them).
func TestSpanNameMethodBounded(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ts := MustServer(t, func(c *httpapi.Config) { c.TracerProvider = tp })
	srv := httptest.NewServer(ts.API) // as sent, without the spec's checks
	defer srv.Close()
	req, _ := http.NewRequest("XQZ1", srv.URL+"/v1/streams/s-1/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	spans := rec.Ended()
	if len(spans) == 0 {
		t.Fatal("no span recorded")
	}
	for _, s := range spans {
		if strings.Contains(s.Name(), "XQZ1") {
			t.Fatalf("span named %q after a made-up method", s.Name())
		}
	}
}
