package tracing_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/tracing"
)

func TestEnabled(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cases := []struct {
		name string
		flag bool
		env  func(string) string
		want bool
	}{
		{"Off", false, env(), false},
		{"Flag", true, env(), true},
		{"Endpoint", false, env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), true},
		{"TracesEndpoint", false, env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces"), true},
		{"SDKDisabled", true, env("OTEL_SDK_DISABLED", "true", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), false},
		{"ExporterNone", false, env("OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := tracing.Enabled(c.flag, c.env); got != c.want {
				t.Fatalf("Enabled = %v, want %v", got, c.want)
			}
		})
	}
	if _, _, err := tracing.Setup(context.Background(), true, "v", env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Setup accepted OTLP over gRPC, which it does not export")
	}
}

// TestSpans serves the real API over a real store seen through the
// tracing decorator, with spans recorded in memory: each request is a
// server span continuing the client's traceparent, and the store calls it
// makes are its children.
func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	store, _ := shardstoretest.NewStore(t, nil)
	traced := tracing.Store(store, tp)
	for _, iface := range []struct {
		name string
		ok   bool
	}{
		{"FeedStore", is[log.FeedStore](traced)}, {"FeedWatcher", is[log.FeedWatcher](traced)},
		{"Watcher", is[log.Watcher](traced)}, {"GroupStore", is[log.GroupStore](traced)},
		{"GroupLister", is[log.GroupLister](traced)},
	} {
		if !iface.ok {
			t.Fatalf("the traced store lost %s", iface.name)
		}
	}
	var logs bytes.Buffer // written by handlers, read after ts.Close
	api, err := httpapi.New(traced, httpapi.Config{TracerProvider: tp, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(spectest.Handler(t, api))
	t.Cleanup(ts.Close)

	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	do := func(method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if got := do("POST", "/v1/streams/tr-1/events", `{"events":[{"type":"t","data":1}]}`); got != 201 {
		t.Fatalf("append: %d", got)
	}
	if got := do("GET", "/v1/feeds/all?limit=5", ""); got != 200 {
		t.Fatalf("feed: %d", got)
	}
	if got := do("GET", "/v1/groups/nogroup", ""); got != 404 {
		t.Fatalf("group: %d", got)
	}
	if got := do("GET", "/v1/groups", ""); got != 200 {
		t.Fatalf("groups: %d", got)
	}

	ts.Close()
	if !strings.Contains(logs.String(), `"trace_id":"`+traceID+`"`) {
		t.Fatalf("no log line names the trace:\n%s", logs.String())
	}

	spans := rec.Ended()
	server := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		for _, s := range spans {
			if s.Name() == name && s.SpanKind() == trace.SpanKindServer {
				return s
			}
		}
		t.Fatalf("no server span %q among %v", name, names(spans))
		return nil
	}
	child := func(of sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
		t.Helper()
		for _, s := range spans {
			if s.Name() == name && s.Parent().SpanID() == of.SpanContext().SpanID() {
				return s
			}
		}
		t.Fatalf("no span %q under %q among %v", name, of.Name(), names(spans))
		return nil
	}

	app := server("POST /v1/streams/:stream/events")
	if got := app.SpanContext().TraceID().String(); got != traceID {
		t.Fatalf("trace id %s, want the traceparent's %s", got, traceID)
	}
	if got := app.Parent().SpanID().String(); got != parent || !app.Parent().IsRemote() {
		t.Fatalf("parent %s (remote %v), want the traceparent's %s", got, app.Parent().IsRemote(), parent)
	}
	if !hasAttr(app, attribute.Int("http.response.status_code", 201)) || !hasAttr(app, attribute.String("http.route", "/v1/streams/:stream/events")) {
		t.Fatalf("append span attributes %v", app.Attributes())
	}
	if a := child(app, "store.Append"); !hasAttr(a, attribute.String("eventlog.stream", "tr-1")) || a.Status().Code == codes.Error {
		t.Fatalf("store.Append span: %v %v", a.Attributes(), a.Status())
	}
	child(server("GET /v1/feeds/all"), "store.ReadFeed")
	if d := child(server("GET /v1/groups/:group"), "store.DescribeGroup"); d.Status().Code != codes.Error {
		t.Fatalf("store.DescribeGroup of a missing group: status %v, want an error", d.Status())
	}
	child(server("GET /v1/groups"), "store.ListGroups")
}

func is[T any](v any) bool {
	_, ok := v.(T)
	return ok
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func hasAttr(s sdktrace.ReadOnlySpan, want attribute.KeyValue) bool {
	for _, a := range s.Attributes() {
		if a.Key == want.Key && a.Value == want.Value {
			return true
		}
	}
	return false
}

// feedsOnly is a store with feeds and watches but no consumer groups, as
// the shard-log store is; its methods are never called here.
type feedsOnly struct {
	log.Store
	log.FeedStore
	log.FeedWatcher
	log.Watcher
}

// TestFeedsWithoutGroups: a store without consumer groups keeps its feeds
// and watches when traced (the shard-log store serves feeds), and gains
// no groups.
func TestFeedsWithoutGroups(t *testing.T) {
	traced := tracing.Store(feedsOnly{}, noop.NewTracerProvider())
	for _, iface := range []struct {
		name      string
		got, want bool
	}{
		{"FeedStore", is[log.FeedStore](traced), true}, {"FeedWatcher", is[log.FeedWatcher](traced), true},
		{"Watcher", is[log.Watcher](traced), true}, {"GroupStore", is[log.GroupStore](traced), false},
	} {
		if iface.got != iface.want {
			t.Fatalf("traced store is %s: %v, want %v", iface.name, iface.got, iface.want)
		}
	}
}
