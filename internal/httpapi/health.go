package httpapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v5"
)

// healthz serves GET /healthz: the process is up. It touches no
// dependency, so it suits a liveness probe.
func (s *Server) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz serves GET /readyz: 200 when the store is reachable and its schema
// current, else 503 unavailable. It also fails while the server drains.
func (s *Server) readyz(c *echo.Context) error {
	if s.draining.Load() {
		return newProblem(http.StatusServiceUnavailable, CodeUnavailable, "the server is shutting down")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if err := s.store.Ready(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", "error", err)
		return newProblem(http.StatusServiceUnavailable, CodeUnavailable, "the store is not ready")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
