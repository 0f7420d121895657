package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
)

// readyFor is how long a store check of /readyz answers the probes that
// follow: /readyz needs no key, so without it every probe, anyone's, was
// a Cassandra read. Orchestrators probe every few seconds.
const readyFor = time.Second

// readiness is the last store check of /readyz.
type readiness struct {
	mu  sync.Mutex // held during a check: concurrent probes share it
	at  time.Time  // when the last check ended (zero: none yet)
	err error
}

// healthz serves GET /healthz: the process is up. It touches no
// dependency, so it suits a liveness probe.
func (s *Server) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz serves GET /readyz: 200 when the store is reachable and its schema
// current, else 503 unavailable; the store's answer is at most readyFor
// old. It also fails while the server drains.
func (s *Server) readyz(c *echo.Context) error {
	if s.draining.Load() {
		return newProblem(http.StatusServiceUnavailable, CodeUnavailable, "the server is shutting down")
	}
	if err := s.checkReady(c.Request().Context()); err != nil {
		return newProblem(http.StatusServiceUnavailable, CodeUnavailable, "the store is not ready")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// checkReady asks the store, unless a check ended less than readyFor ago
// (or ends while this one waits for it). The check is detached from the
// prober's cancellation: it answers the others too.
func (s *Server) checkReady(ctx context.Context) error {
	r := &s.ready
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && time.Since(r.at) < readyFor {
		return r.err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ReadyTimeout)
	defer cancel()
	r.err = s.store.Ready(cctx)
	r.at = time.Now()
	if r.err != nil {
		s.log.WarnContext(ctx, "not ready", "error", r.err)
	}
	return r.err
}
