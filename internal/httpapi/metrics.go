package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// propagator reads the W3C trace context (traceparent, tracestate) and
// baggage of a request, whatever the global OpenTelemetry setup.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// metrics are the HTTP layer's Prometheus metrics. Cassandra errors and
// latencies are counted by the store on the same registry.
type metrics struct {
	requests   *prometheus.CounterVec   // route, method, status
	duration   *prometheus.HistogramVec // route, method
	inFlight   prometheus.Gauge
	appended   prometheus.Counter
	duplicates prometheus.Counter
	conflicts  *prometheus.CounterVec // code
	suppressed *prometheus.CounterVec // kind: log lines not written (logflood.go)
	tlsErrors  prometheus.Counter
	corrupt    *prometheus.CounterVec // kind: reads answered data_corrupt or snapshot_corrupt, cut by corrupt data, or leaving it out (eventByID)
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlog_http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventlog_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method (streams: until the last byte).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlog_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_appended_events_total",
			Help: "Events written by appends (not counting idempotent duplicates).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_append_duplicates_total",
			Help: "Appends recognised as retries of stored appends (nothing written).",
		}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlog_append_conflicts_total",
			Help: "Appends rejected by a conflict, by problem code (wrong_expected_version, idempotency_conflict).",
		}, []string{"code"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlog_log_lines_suppressed_total",
			Help: "Log lines not written because their kind (unauthenticated, invalid_host, tls_handshake, client_error_<status> for every other 4xx answer) passed its limit of lines a minute.",
		}, []string{"kind"}),
		tlsErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_tls_handshake_errors_total",
			Help: "TLS handshakes of the API listener that failed.",
		}),
		corrupt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlog_data_corrupt_total",
			Help: "Requests that failed on stored data that failed its integrity check (answered data_corrupt or snapshot_corrupt, or a stream cut), or that left such a row out of their answer (a lookup by id of a key scoped to some streams), by kind of row: chunk, run, chunk_ids, log_record, snapshot. Find them all with server verify.",
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.appended, m.duplicates, m.conflicts, m.suppressed, m.tlsErrors, m.corrupt} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register http metrics: %w", err)
		}
	}
	for _, kind := range []string{log.CorruptChunk, log.CorruptRun, log.CorruptChunkIDs, log.CorruptLogRecord, log.CorruptSnapshot} {
		m.corrupt.WithLabelValues(kind)
	}
	for _, code := range []string{CodeWrongExpectedVersion, CodeIdempotencyConflict} {
		m.conflicts.WithLabelValues(code)
	}
	return m, nil
}

// countCorrupt counts a request that failed on corrupt stored data and
// returns the row's key as log attributes (nil when err is not that).
func (s *Server) countCorrupt(err error) []any {
	var ce *log.CorruptError
	if !errors.As(err, &ce) {
		return nil
	}
	s.metrics.corrupt.WithLabelValues(ce.Kind).Inc()
	return ce.Attrs()
}

// countAppend records the outcome of one append.
func (m *metrics) countAppend(events int, duplicate bool, err error) {
	switch {
	case err == nil && duplicate:
		m.duplicates.Inc()
	case err == nil:
		m.appended.Add(float64(events))
	default:
		if p := ProblemFor(err); p.Status == http.StatusConflict {
			m.conflicts.WithLabelValues(p.Code).Inc()
		}
	}
}

func (s *Server) metricsHandler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
}

// routeLabel is the matched route pattern, or "unmatched" for 404/405, so
// label cardinality stays bounded whatever paths clients send.
func routeLabel(c *echo.Context) string {
	ri := c.RouteInfo()
	if ri.Path == "" || ri.Name == echo.NotFoundRouteName || ri.Name == echo.MethodNotAllowedRouteName {
		return "unmatched"
	}
	return ri.Path
}

// methodLabel is a request method as a metric label: the standard
// methods, and "other" for any other token a client sends, so made-up
// methods (counted before authentication) cannot add series without
// bound.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// observe is the outermost route middleware: it gives the request its id
// (X-Request-Id, in the context for every log line and problem) and its
// server span (continuing a traceparent it carries), turns
// returned errors into problem responses (so the status it records is the
// one sent), recovers panics as 500 internal, or a cut connection once
// the response has started (logged with their stack: a *fanout.Panic,
// raised again from a goroutine the request started, with that
// goroutine's), and records metrics and an
// access log line (debug for health and readiness probes). A
// deliberate http.ErrAbortHandler (a stream cut after its headers were
// sent) is re-raised so net/http drops the connection.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		start := time.Now()
		r := c.Request()
		id := requestID(r.Header.Get(HeaderRequestID))
		ctx := withRequestID(r.Context(), id)
		span := trace.SpanFromContext(ctx) // a no-op span unless traced
		if s.traced {
			// Skipped untraced: extracting, naming and attributing a span
			// that records nothing was ~1 % of a 1-event append's CPU.
			ctx = propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
			// A method outside the standard ones is "HTTP" in the name
			// and "_OTHER" as the attribute (OpenTelemetry's HTTP
			// conventions): span names stay few.
			name, method := r.Method, r.Method
			if methodLabel(method) == "other" {
				name, method = "HTTP", "_OTHER"
			}
			ctx, span = s.tracer.Start(ctx, name+" "+routeLabel(c), trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRoute(routeLabel(c)),
					semconv.URLPath(r.URL.Path), attribute.String("eventlog.request_id", id)))
		}
		c.SetRequest(r.WithContext(ctx))
		c.Response().Header().Set(HeaderRequestID, id)
		s.metrics.inFlight.Inc()
		aborted := false
		defer func() {
			rec := recover()
			if p, ok := rec.(*fanout.Panic); ok && p.Value == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				rec = http.ErrAbortHandler // a stream cut on a goroutine of the request's
			}
			aborted = rec == http.ErrAbortHandler //nolint:errorlint
			if rec != nil && !aborted {
				value, stack := rec, debug.Stack()
				if p, ok := rec.(*fanout.Panic); ok {
					// Raised again from a goroutine the request waited
					// for: where it happened is that goroutine's stack.
					value, stack = p.Value, slices.Concat(p.Stack, []byte("\nraised again on the request's goroutine:\n"), stack)
				}
				s.log.ErrorContext(c.Request().Context(), "panic serving request",
					"method", c.Request().Method, "route", routeLabel(c), "panic", fmt.Sprint(value), "stack", string(stack))
				if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
					// A stream under way: cut, never ended as if complete
					// (its status was sent; no problem can follow it).
					aborted = true
				} else {
					s.errorHandler(c, fmt.Errorf("panic: %v", value))
				}
			}
			route, method := routeLabel(c), c.Request().Method
			_, status := echo.ResolveResponseStatus(c.Response(), nil)
			elapsed := time.Since(start)
			s.metrics.inFlight.Dec()
			s.metrics.requests.WithLabelValues(route, methodLabel(method), strconv.Itoa(status)).Inc()
			s.metrics.duration.WithLabelValues(route, methodLabel(method)).Observe(elapsed.Seconds())
			if s.traced {
				span.SetAttributes(semconv.HTTPResponseStatusCode(status))
				if status >= 500 || aborted {
					span.SetStatus(codes.Error, http.StatusText(status))
				}
				span.End()
			}
			// Probes come every few seconds from every orchestrator: debug.
			level := slog.LevelInfo
			switch {
			case route == "/healthz" || route == "/readyz":
				level = slog.LevelDebug
			case s.cfg.AccessLog != "all" && status < 400 && !aborted:
				level = slog.LevelDebug
			}
			if ctx := c.Request().Context(); s.log.Enabled(ctx, level) { // skip boxing the attributes of a line not written
				var skipped int64
				write := true
				if g := s.floodGateFor(status); g != nil && level >= slog.LevelInfo {
					write, skipped = g.pass(time.Now())
				}
				switch {
				case !write:
				case skipped > 0:
					s.log.Log(ctx, level, "request",
						"method", method, "route", route, "status", status, "duration_ms", elapsed.Milliseconds(),
						"remote", c.Request().RemoteAddr, "aborted", aborted, "suppressed", skipped)
				default:
					s.log.Log(ctx, level, "request",
						"method", method, "route", route, "status", status, "duration_ms", elapsed.Milliseconds(),
						"remote", c.Request().RemoteAddr, "aborted", aborted)
				}
			}
			if aborted {
				panic(http.ErrAbortHandler)
			}
		}()
		if err := next(c); err != nil {
			s.errorHandler(c, err)
		}
		return nil
	}
}
