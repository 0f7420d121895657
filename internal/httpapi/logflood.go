package httpapi

import (
	stdlog "log"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Log lines anyone can cause without a key — 401 answers to bad or
// missing tokens, 421 answers to foreign Host headers, TLS handshakes
// that fail — are written at most LogFloodLines a LogFloodWindow for each
// kind: a scanner or a misconfigured client sending thousands a second
// would otherwise write as many lines, drowning the others and filling
// disks. The rest are counted (eventlog_log_lines_suppressed_total{kind},
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
)

// floodGate limits the log lines of one kind.
type floodGate struct {
	suppressed prometheus.Counter

	mu      sync.Mutex
	start   time.Time // of the current window
	lines   int       // written in it
	skipped int64     // suppressed since the last line written
}

func newFloodGate(suppressed *prometheus.CounterVec, kind string) *floodGate {
	return &floodGate{suppressed: suppressed.WithLabelValues(kind)}
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
		g.suppressed.Inc()
		return false, 0
	}
	g.lines++
	skipped, g.skipped = g.skipped, 0
	return true, skipped
}

// floodGateFor is the gate of an access log line of status, nil for the
// statuses that need a key (their floods are rate limited per key).
func (s *Server) floodGateFor(status int) *floodGate {
	switch status {
	case 401:
		return s.floods[floodUnauthenticated]
	case 421:
		return s.floods[floodInvalidHost]
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
