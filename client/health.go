package client

import (
	"context"
	"fmt"
	"net/http"
)

// Health checks that the server process is up (GET /healthz). It is one
// attempt, not retried: a probe should report what it sees.
func (c *Client) Health(ctx context.Context) error {
	return c.probe(ctx, "/healthz")
}

// Ready checks that the server can serve: Cassandra reachable and the
// schema current (GET /readyz). A server that is not ready, or is shutting
// down, answers ErrUnavailable. One attempt, not retried.
func (c *Client) Ready(ctx context.Context) error {
	return c.probe(ctx, "/readyz")
}

func (c *Client) probe(ctx context.Context, path string) error {
	res, err := c.send(ctx, &request{method: http.MethodGet, path: path})
	if err != nil {
		return fmt.Errorf("eventlog: %s: %w", path, err)
	}
	return res.Body.Close()
}
