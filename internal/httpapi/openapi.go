package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v5"
)

// openapiJSON is the OpenAPI 3.1 description of every route. The HTTP
// tests check all their traffic against it (spectest), so it cannot drift
// from the handlers.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI 3.1 description of the API (a copy).
func OpenAPI() []byte { return append([]byte(nil), openapiJSON...) }

// openapi serves GET /openapi.json.
func (s *Server) openapi(c *echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openapiJSON)
}
