package httpapi

import (
	"net/http"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// streamInfo is the JSON of GET /v1/streams/{stream}.
type streamInfo struct {
	Stream         log.StreamID `json:"stream"`
	Category       string       `json:"category"`
	Version        int64        `json:"version"`
	CreatedAt      string       `json:"created_at"`
	UpdatedAt      string       `json:"updated_at"`
	Buckets        int          `json:"buckets"`
	CurrentBucket  int64        `json:"current_bucket"`
	LatestSnapshot *int64       `json:"latest_snapshot_version"` // null: none
}

func newStreamInfo(i log.StreamInfo) streamInfo {
	out := streamInfo{
		Stream:        i.Stream,
		Category:      i.Category,
		Version:       i.Version,
		CreatedAt:     formatTime(i.CreatedAt),
		UpdatedAt:     formatTime(i.UpdatedAt),
		Buckets:       i.Buckets,
		CurrentBucket: i.CurrentBucket,
	}
	if out.Category == "" {
		out.Category = i.Stream.Category()
	}
	if i.LatestSnapshot > 0 {
		v := i.LatestSnapshot
		out.LatestSnapshot = &v
	}
	return out
}

// streamInfo serves GET /v1/streams/{stream}.
func (s *Server) streamInfo(c *echo.Context) error {
	stream, err := streamParam(c.Param("stream"))
	if err != nil {
		return err
	}
	if err := s.allow(c, auth.ActionRead, string(stream)); err != nil {
		return err
	}
	info, err := s.store.Info(c.Request().Context(), stream)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newStreamInfo(info))
}

// optionalTime formats t, or returns "" (omitted) for the zero time.
func optionalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}
