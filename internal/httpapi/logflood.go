package httpapi

import (
	stdlog "log"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Log lines a client can cause at will — 401 answers to bad or missing
// tokens, 421 answers to foreign Host headers, TLS handshakes that fail,
// and any other 4xx answer (403s and 404s of a valid key, 409s, 429s) —
// are written at most LogFloodLines a LogFloodWindow for each kind: a
// scanner or a misconfigured client sending thousands a second would
// otherwise write as many lines, drowning the others and filling disks.
// A key's rate limit does not bound them: it is off by default, and each
// request it refuses is a 429, itself a line. The rest are counted (eventlog_log_lines_suppressed_total{kind},
// and the requests themselves in eventlog_http_requests_total), and the
// next line written of that kind says how many it follows ("suppressed").
const (
	LogFloodLines  = 10
	LogFloodWindow = time.Minute
)

// Kinds of flood-limited log lines (the metric's kind label).
const (
	floodUnauthenticated = "unauthenticated"
	floodInvalidHost     = "invalid_host"
	floodTLSHandshake    = "tls_handshake"
	// floodClientError prefixes the kinds of the other 4xx answers, one a
	// status ("client_error_404"), so that one client's flood of 404s
	// does not hide another's 403s.
	floodClientError = "client_error_"
)

// floodGate limits the log lines of one kind.
type floodGate struct {
	vec        *prometheus.CounterVec
	kind       string
	suppressed prometheus.Counter // nil until a line of kind is suppressed (lazy gates)

	mu      sync.Mutex
	start   time.Time // of the current window
	lines   int       // written in it
	skipped int64     // suppressed since the last line written
}

func newFloodGate(suppressed *prometheus.CounterVec, kind string) *floodGate {
	return &floodGate{vec: suppressed, kind: kind, suppressed: suppressed.WithLabelValues(kind)}
}

// newLazyFloodGate is a gate whose series appears at its first suppressed
// line: a hundred 4xx statuses, most never answered, need no zero series.
func newLazyFloodGate(suppressed *prometheus.CounterVec, kind string) *floodGate {
	return &floodGate{vec: suppressed, kind: kind}
}

// pass reports whether a line may be written at now and, if so, how many
// of its kind were suppressed since the last one written.
func (g *floodGate) pass(now time.Time) (ok bool, skipped int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.start) >= LogFloodWindow || now.Before(g.start) {
		g.start, g.lines = now, 0
	}
	if g.lines >= LogFloodLines {
		g.skipped++
		if g.suppressed == nil {
			g.suppressed = g.vec.WithLabelValues(g.kind)
		}
		g.suppressed.Inc()
		return false, 0
	}
	g.lines++
	skipped, g.skipped = g.skipped, 0
	return true, skipped
}

// floodGateFor is the gate of an access log line of status, nil for 5xx
// (the server's trouble, for operators to see whole) and the rest.
func (s *Server) floodGateFor(status int) *floodGate {
	switch {
	case status == 401:
		return s.floods[floodUnauthenticated]
	case status == 421:
		return s.floods[floodInvalidHost]
	case status >= 400 && status < 500:
		return s.floods[floodClientError+strconv.Itoa(status)]
	}
	return nil
}

// tlsHandshakeError starts net/http's line for a failed TLS handshake.
const tlsHandshakeError = "http: TLS handshake error"

// ErrorLog is the logger of the http.Server that serves s: its lines go
// to Config.Logger at warn level, but failed TLS handshakes (a port
// scanner, a client speaking plain HTTP, a bad certificate) are counted in
// eventlog_tls_handshake_errors_total and flood-limited.
func (s *Server) ErrorLog() *stdlog.Logger {
	return stdlog.New(errorLogWriter{s}, "", 0)
}

type errorLogWriter struct{ s *Server }

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	var attrs []any
	if strings.HasPrefix(msg, tlsHandshakeError) {
		w.s.metrics.tlsErrors.Inc()
		ok, skipped := w.s.floods[floodTLSHandshake].pass(time.Now())
		if !ok {
			return len(p), nil
		}
		if skipped > 0 {
			attrs = append(attrs, "suppressed", skipped)
		}
	}
	w.s.log.Warn(msg, attrs...)
	return len(p), nil
}
