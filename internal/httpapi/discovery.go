package httpapi

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
)

// Listing limits of GET /v1/streams.
const (
	defaultStreamsLimit = 100
	maxStreamsLimit     = 1000
)

// streamSummary is a stream in GET /v1/streams.
type streamSummary struct {
	Stream    log.StreamID `json:"stream"`
	Category  string       `json:"category"`
	Version   int64        `json:"version"`
	CreatedAt string       `json:"created_at"`
	UpdatedAt string       `json:"updated_at"`
}

// streamList is the JSON of GET /v1/streams.
type streamList struct {
	Streams []streamSummary `json:"streams"`
	// Next is null at the end; a stream id, or a sealed cursor when the
	// page ended on a stream the key may not read (listcursor.go).
	Next *string `json:"next"`
}

// categoryCount is a category in GET /v1/categories.
type categoryCount struct {
	Category string `json:"category"`
	Streams  int64  `json:"streams"`
	Exact    bool   `json:"exact"`
}

// discovery returns the store's catalog, or 501.
func (s *Server) discovery() (log.Catalog, error) {
	if s.catalog == nil {
		return nil, newProblem(http.StatusNotImplemented, CodeNotImplemented,
			"this server's store has no stream catalog (it is served on --write-path shards)")
	}
	return s.catalog, nil
}

// listStreams serves GET /v1/streams?prefix=&category=&limit=&after=: a
// page of the stream catalog, by category then id, each stream with its
// version and last update. Streams outside the key's read scopes are left
// out (never counted, never shown), so any key may list.
func (s *Server) listStreams(c *echo.Context) error {
	cat, err := s.discovery()
	if err != nil {
		return err
	}
	q := c.QueryParams()
	var sq log.StreamQuery
	for name, dst := range map[string]*string{"prefix": &sq.Prefix, "category": &sq.Category} {
		if *dst, err = stringParam(q, name); err != nil {
			return err
		}
	}
	after, err := stringParam(q, "after")
	if err != nil {
		return err
	}
	if sq.After, err = s.openAfter(after); err != nil {
		return invalidRequest("after must be a stream id or a page's next")
	}
	limit, err := intParam(q, "limit", defaultStreamsLimit, 1)
	if err != nil {
		return err
	}
	if limit > maxStreamsLimit {
		return invalidRequest("limit must be at most 1000")
	}
	sq.Limit = int(limit)
	if s.cfg.Auth != nil {
		k := keyOf(c)
		if k == nil {
			return forbid(c)
		}
		sq.Visible = func(id log.StreamID) bool { return k.Allows(auth.ActionRead, string(id)) }
	}
	page, err := cat.ListStreams(c.Request().Context(), sq)
	if err != nil {
		return err
	}
	out := streamList{Streams: make([]streamSummary, len(page.Streams))}
	for i, st := range page.Streams {
		out.Streams[i] = streamSummary{Stream: st.Stream, Category: st.Category, Version: st.Version,
			CreatedAt: formatTime(st.CreatedAt), UpdatedAt: formatTime(st.UpdatedAt)}
	}
	if page.Next != "" {
		next := string(page.Next)
		if sq.Visible != nil && !sq.Visible(page.Next) {
			// The scan cap cut the page on a stream the key may not
			// read: resume there without naming it.
			next = s.sealCursor(page.Next)
		}
		out.Next = &next
	}
	return c.JSON(http.StatusOK, out)
}

// listCategories serves GET /v1/categories?after=&limit=: a page of the
// categories the key may read as a whole (the rule of the category
// feed), in name order, with their stream counts. As a stream listing, a
// page the store's scan cap cut on a category the key may not read has a
// sealed next.
func (s *Server) listCategories(c *echo.Context) error {
	cat, err := s.discovery()
	if err != nil {
		return err
	}
	q := c.QueryParams()
	after, err := stringParam(q, "after")
	if err != nil {
		return err
	}
	opened, err := s.openAfter(after)
	if err != nil {
		return invalidRequest("after must be a category or a page's next")
	}
	limit, err := intParam(q, "limit", defaultStreamsLimit, 1)
	if err != nil {
		return err
	}
	if limit > maxStreamsLimit {
		return invalidRequest("limit must be at most 1000")
	}
	cq := log.CategoryQuery{After: string(opened), Limit: int(limit)}
	if s.cfg.Auth != nil {
		k := keyOf(c)
		if k == nil {
			return forbid(c)
		}
		cq.Visible = func(name string) bool { return k.CanReadFeed(log.Feed{Kind: log.FeedCategory, Name: name}) }
	}
	page, err := cat.Categories(c.Request().Context(), cq)
	if err != nil {
		return err
	}
	out := struct {
		Categories []categoryCount `json:"categories"`
		// Next is null at the end; a category, or a sealed cursor when
		// the page ended on one the key may not read.
		Next *string `json:"next"`
	}{Categories: make([]categoryCount, len(page.Categories))}
	for i, cc := range page.Categories {
		out.Categories[i] = categoryCount{Category: cc.Category, Streams: cc.Streams, Exact: cc.Exact}
	}
	if page.Next != "" {
		next := page.Next
		if cq.Visible != nil && !cq.Visible(page.Next) {
			next = s.sealCursor(log.StreamID(page.Next))
		}
		out.Next = &next
	}
	return c.JSON(http.StatusOK, out)
}

// eventByID serves GET /v1/events/{id}: the event with that id, wherever
// it is, with its stream. An event in a stream outside the key's read
// scopes is 404, as if absent (the answer never tells that it exists, and
// the stream is not read); so is one whose log record is corrupt, unless
// the key may read every stream (its stream is not known then: EventByID;
// the record is counted in eventlog_data_corrupt_total all the same).
func (s *Server) eventByID(c *echo.Context) error {
	cat, err := s.discovery()
	if err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil || len(c.Param("id")) != 36 {
		return invalidRequest("the event id must be a UUID (8-4-4-4-12 hex digits)")
	}
	// The scope is checked once the index named the stream, before it is
	// read: a stream the key may not read is never touched.
	var visible func(log.StreamID) bool // nil: every stream
	if k := keyOf(c); s.cfg.Auth != nil && (k == nil || !k.CanReadFeed(log.Feed{Kind: log.FeedAll})) {
		visible = func(st log.StreamID) bool { return s.permits(c, auth.ActionRead, string(st)) }
	}
	ctx := c.Request().Context()
	var skipped atomic.Pointer[log.CorruptError]
	if visible != nil {
		// A corrupt log record left out of a scoped lookup is 404 for
		// the key (the store logs its key), and is counted as every
		// request meeting corrupt data is: once, by its kind.
		ctx = log.WithSkippedCorrupt(ctx, func(ce *log.CorruptError) { skipped.CompareAndSwap(nil, ce) })
	}
	e, err := cat.EventByID(ctx, id, visible)
	if ce := skipped.Load(); ce != nil {
		s.metrics.corrupt.WithLabelValues(ce.Kind).Inc()
	}
	if err != nil {
		return err
	}
	b := append([]byte(`{"stream":`), appendString(nil, string(e.Stream))...)
	b = append(b, ',')
	b = appendEventMembers(b, &e)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// cluster JSON of GET /v1/cluster.
type (
	clusterJSON struct {
		Keyspace  string         `json:"keyspace"`
		Shards    int            `json:"shards"`
		Self      string         `json:"self"`
		Instances []instanceJSON `json:"instances"`
		Unowned   []int          `json:"unowned_shards"`
		Nodes     []nodeJSON     `json:"cassandra_nodes"`
	}
	instanceJSON struct {
		ID      string `json:"id"`
		Address string `json:"address"`
		Started string `json:"started"`
		Version string `json:"version"`
		// SchemaVersion is omitted for an instance that does not say.
		SchemaVersion int         `json:"schema_version,omitempty"`
		Shards        []shardJSON `json:"shards"`
	}
	shardJSON struct {
		Shard      int    `json:"shard"`
		Epoch      int64  `json:"epoch"`
		LeaseUntil string `json:"lease_until"`
	}
	nodeJSON struct {
		Address        string `json:"address"`
		HostID         string `json:"host_id"`
		DataCenter     string `json:"data_center"`
		Rack           string `json:"rack"`
		ReleaseVersion string `json:"release_version"`
		State          string `json:"state"`
		Coordinator    bool   `json:"coordinator"`
	}
)

// clusterInfo serves GET /v1/cluster (admin): the keyspace's live
// instances, the shards each owns with its epoch, and the Cassandra nodes
// with their state.
func (s *Server) clusterInfo(c *echo.Context) error {
	if s.cluster == nil {
		return newProblem(http.StatusNotImplemented, CodeNotImplemented,
			"this server's store has no cluster view (it is served on --write-path shards)")
	}
	ci, err := s.cluster.Cluster(c.Request().Context())
	if err != nil {
		return err
	}
	out := clusterJSON{Keyspace: ci.Keyspace, Shards: ci.Shards, Self: ci.Self,
		Instances: make([]instanceJSON, len(ci.Instances)), Unowned: ci.Unowned, Nodes: make([]nodeJSON, len(ci.Nodes))}
	if out.Unowned == nil {
		out.Unowned = []int{}
	}
	for i, in := range ci.Instances {
		ij := instanceJSON{ID: in.ID, Address: in.Address, Started: formatTime(in.Started), Version: in.Version, SchemaVersion: in.SchemaVersion, Shards: []shardJSON{}}
		for _, sh := range in.Shards {
			ij.Shards = append(ij.Shards, shardJSON{Shard: sh.Shard, Epoch: sh.Epoch, LeaseUntil: formatTime(sh.LeaseUntil.Truncate(time.Millisecond))})
		}
		out.Instances[i] = ij
	}
	for i, n := range ci.Nodes {
		out.Nodes[i] = nodeJSON(n)
	}
	return c.JSON(http.StatusOK, out)
}
