package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// snapshotInfo is the JSON of a stored snapshot (PUT response).
type snapshotInfo struct {
	Stream      log.StreamID `json:"stream"`
	Version     int64        `json:"version"`
	CreatedAt   string       `json:"created_at,omitempty"`
	Size        int          `json:"size"`
	StoredSize  int          `json:"stored_size"`
	Compression string       `json:"compression,omitempty"`
}

func newSnapshotInfo(i log.SnapshotInfo) snapshotInfo {
	return snapshotInfo{Stream: i.Stream, Version: i.Version, CreatedAt: optionalTime(i.CreatedAt),
		Size: i.Size, StoredSize: i.StoredSize, Compression: i.Compression}
}

// snapshot is the JSON of GET .../snapshots/latest.
type snapshot struct {
	snapshotInfo
	State json.RawMessage `json:"state"`
}

// putSnapshot serves PUT /v1/streams/{stream}/snapshots/{version}: the body
// is the aggregate state, any JSON value, stored as sent (compressed by the
// store). 201 with the original and stored sizes; a version outside
// 1..head is 422.
func (s *Server) putSnapshot(c *echo.Context) error {
	stream, err := streamParam(c.Param("stream"))
	if err != nil {
		return err
	}
	if err := s.allow(c, auth.ActionSnapshot, string(stream)); err != nil {
		return err
	}
	version, err := snapshotVersionParam(c.Param("version"))
	if err != nil {
		return err
	}
	if err := requireMediaType(c.Request(), echo.MIMEApplicationJSON); err != nil {
		return err
	}
	state, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err
	}
	if len(state) == 0 || !json.Valid(state) {
		return badJSON("the snapshot body must be one JSON value")
	}
	// json.Valid does not look at the encoding: a state with invalid
	// UTF-8 would be served back in every state load as bytes that are
	// not JSON text.
	if !utf8.Valid(state) {
		return badJSON("the snapshot body must be UTF-8")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), s.cfg.AppendTimeout)
	defer cancel()
	info, err := s.store.PutSnapshot(ctx, stream, version, state)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/v1/streams/%s/snapshots/latest?max_version=%d", stream, version))
	return c.JSON(http.StatusCreated, newSnapshotInfo(info))
}

// latestSnapshot serves GET /v1/streams/{stream}/snapshots/latest: the
// newest snapshot at or below max_version (default: any).
func (s *Server) latestSnapshot(c *echo.Context) error {
	stream, err := streamParam(c.Param("stream"))
	if err != nil {
		return err
	}
	if err := s.allow(c, auth.ActionRead, string(stream)); err != nil {
		return err
	}
	maxVersion, err := intParam(c.QueryParams(), "max_version", 0, 0)
	if err != nil {
		return err
	}
	snap, err := s.store.LatestSnapshot(c.Request().Context(), stream, maxVersion)
	if err != nil {
		return err
	}
	if len(snap.State) == 0 {
		return errors.New("store returned a snapshot without state")
	}
	return c.JSON(http.StatusOK, snapshot{snapshotInfo: newSnapshotInfo(snap.SnapshotInfo), State: snap.State})
}
