package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	stdlog "log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/tracing"
)

// TestSetupLogsExportErrors exports a span to a collector that refuses
// it: the SDK's error is a warn line of the server's logger (JSON here, as
// with --log-format json), not the standard library logger's plain text.
func TestSetupLogsExportErrors(t *testing.T) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused by the test", http.StatusBadRequest)
	}))
	defer collector.Close()
	var std bytes.Buffer
	prev := stdlog.Writer()
	stdlog.SetOutput(&std)
	defer stdlog.SetOutput(prev)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL) // the exporter reads the environment itself
	tp, stop, err := tracing.Setup(context.Background(), true, "v", func(string) string { return "" }, logger)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "span")
	span.End()
	_ = stop(context.Background()) // flushes the batch: the export fails
	if std.Len() > 0 {
		t.Errorf("the standard logger wrote %q", std.String())
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var line struct{ Level, Msg, Error string }
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if got, want := line.Level+" "+line.Msg, "WARN tracing"; got != want || !strings.Contains(line.Error, "400") {
		t.Fatalf("log line %+v, want %s with the collector's 400 as its error", line, want)
	}
}
