package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// TestTracingExportsOTLP runs the whole server with tracing configured the
// standard way (OTEL_EXPORTER_OTLP_ENDPOINT) against a stand-in OTLP/HTTP
// collector: a request's server span and its store span arrive, in the
// trace of the traceparent the client sent.
func TestTracingExportsOTLP(t *testing.T) {
	var (
		mu    sync.Mutex
		spans = map[string]string{} // name -> trace id
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[s.Name] = string(hexID(s.TraceId))
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	m := MustRunMain(t, o, "--migrate")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("POST", "http://"+m.Addr()+"/v1/streams/otel-1/events",
		strings.NewReader(`{"events":[{"type":"t","data":1}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("append: %d", res.StatusCode)
	}
	if err := m.Close(); err != nil { // flushes the spans
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"POST /v1/streams/:stream/events", "store.Append"} {
		if got := spans[name]; got != traceID {
			t.Errorf("span %q: trace %q, want %s (spans: %v)", name, got, traceID, spans)
		}
	}
}

func hexID(b []byte) []byte {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return out
}
