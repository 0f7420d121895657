package tracing

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventlog/eventlog/internal/log"
)

// instrumentation is the tracer name of the store spans.
const instrumentation = "github.com/eventlog/eventlog/internal/tracing"

// Store returns inner seen through spans: each call is a span named
// "store.<Method>" (a child of the caller's span), with the stream or group
// it touches, ended with the call's error. inner's optional interfaces
// (log.FeedStore, log.FeedWatcher, log.Watcher, log.GroupStore,
// log.GroupSecrets with log.GroupDeleter and log.GroupLister, and log.Catalog with
// log.ClusterStore) are kept in these mixes: all of them (the shard-log
// store), all but the last two, all but the last four (the per-stream
// store), or no groups at all. A store with another mix is returned with
// just its log.Store methods traced and no optional interface, so wrap
// only such a store when that is acceptable. Every store returned is a
// log.StateReader, using inner's when it has one.
func Store(inner log.Store, tp trace.TracerProvider) log.Store {
	s := &store{inner: inner, t: tp.Tracer(instrumentation)}
	switch in := inner.(type) {
	case discoveryStore:
		return &tracedDiscovery{tracedSecure: &tracedSecure{tracedFull: &tracedFull{tracedFeeds: &tracedFeeds{store: s, feeds: in}, full: in}, secure: in}, disc: in}
	case secureStore:
		return &tracedSecure{tracedFull: &tracedFull{tracedFeeds: &tracedFeeds{store: s, feeds: in}, full: in}, secure: in}
	case fullStore:
		return &tracedFull{tracedFeeds: &tracedFeeds{store: s, feeds: in}, full: in}
	case feedStore:
		return &tracedFeeds{store: s, feeds: in}
	}
	return s
}

// feedStore is a store with feeds and watches but no consumer groups.
type feedStore interface {
	log.Store
	log.FeedStore
	log.FeedWatcher
	log.Watcher
}

// fullStore is a store with feeds, watches and consumer groups.
type fullStore interface {
	feedStore
	log.GroupStore
}

// secureStore is a fullStore whose group members hold secrets and whose
// groups can be deleted and listed (the shard-log store): losing those
// behind the decorator would drop the member secret check.
type secureStore interface {
	fullStore
	log.GroupSecrets
	log.GroupDeleter
	log.GroupLister
}

// discoveryStore is a secureStore with the discovery indexes and the
// cluster view (the shard-log store).
type discoveryStore interface {
	secureStore
	log.Catalog
	log.ClusterStore
}

var (
	_ discoveryStore = (*tracedDiscovery)(nil)
	_ log.Store      = (*store)(nil)
	_ feedStore      = (*tracedFeeds)(nil)
	_ fullStore      = (*tracedFull)(nil)
	_ secureStore    = (*tracedSecure)(nil)
)

type store struct {
	inner log.Store
	t     trace.Tracer
}

// span starts the span of one store call.
func (s *store) span(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return s.t.Start(ctx, "store."+name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// end records err (ErrStop is a normal end of a read) and ends sp.
func end(sp trace.Span, err error) {
	if err != nil && err != log.ErrStop { //nolint:errorlint // sentinel returned as is
		sp.RecordError(err)
		sp.SetStatus(codes.Error, err.Error())
	}
	sp.End()
}

func streamAttr(id log.StreamID) attribute.KeyValue {
	return attribute.String("eventlog.stream", string(id))
}

func (s *store) Append(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	ctx, sp := s.span(ctx, "Append", streamAttr(req.Stream), attribute.Int("eventlog.events", len(req.Events)))
	res, err := s.inner.Append(ctx, req)
	if err == nil {
		sp.SetAttributes(attribute.Int64("eventlog.first_version", res.FirstVersion), attribute.Bool("eventlog.duplicate", res.Duplicate))
	}
	end(sp, err)
	return res, err
}

// ReadState keeps the inner store's log.StateReader (or its LoadState
// and ReadStream, as log.ReadState falls back to them) in one span.
func (s *store) ReadState(ctx context.Context, stream log.StreamID, begin func(log.State) error, fn func(*log.RecordedEvent) error) error {
	ctx, sp := s.span(ctx, "ReadState", streamAttr(stream))
	n := 0
	err := log.ReadState(ctx, s.inner, stream, 0, begin, func(e *log.RecordedEvent) error {
		n++
		return fn(e)
	})
	sp.SetAttributes(attribute.Int("eventlog.events", n))
	end(sp, err)
	return err
}

func (s *store) ReadStream(ctx context.Context, r log.ReadRange, fn func(*log.RecordedEvent) error) error {
	ctx, sp := s.span(ctx, "ReadStream", streamAttr(r.Stream), attribute.Int64("eventlog.from", r.From),
		attribute.Int64("eventlog.to", r.To), attribute.Bool("eventlog.backward", r.Backward))
	n := 0
	err := s.inner.ReadStream(ctx, r, func(e *log.RecordedEvent) error {
		n++
		return fn(e)
	})
	sp.SetAttributes(attribute.Int("eventlog.events", n))
	end(sp, err)
	return err
}

func (s *store) VersionAt(ctx context.Context, stream log.StreamID, t time.Time) (int64, error) {
	ctx, sp := s.span(ctx, "VersionAt", streamAttr(stream))
	v, err := s.inner.VersionAt(ctx, stream, t)
	end(sp, err)
	return v, err
}

func (s *store) Info(ctx context.Context, stream log.StreamID) (log.StreamInfo, error) {
	ctx, sp := s.span(ctx, "Info", streamAttr(stream))
	i, err := s.inner.Info(ctx, stream)
	end(sp, err)
	return i, err
}

func (s *store) HeadVersion(ctx context.Context, stream log.StreamID) (int64, error) {
	ctx, sp := s.span(ctx, "HeadVersion", streamAttr(stream))
	v, err := s.inner.HeadVersion(ctx, stream)
	end(sp, err)
	return v, err
}

func (s *store) PutSnapshot(ctx context.Context, stream log.StreamID, version int64, state json.RawMessage) (log.SnapshotInfo, error) {
	ctx, sp := s.span(ctx, "PutSnapshot", streamAttr(stream), attribute.Int64("eventlog.version", version))
	i, err := s.inner.PutSnapshot(ctx, stream, version, state)
	end(sp, err)
	return i, err
}

func (s *store) LatestSnapshot(ctx context.Context, stream log.StreamID, maxVersion int64) (log.Snapshot, error) {
	ctx, sp := s.span(ctx, "LatestSnapshot", streamAttr(stream))
	snap, err := s.inner.LatestSnapshot(ctx, stream, maxVersion)
	end(sp, err)
	return snap, err
}

func (s *store) Ready(ctx context.Context) error {
	ctx, sp := s.span(ctx, "Ready")
	err := s.inner.Ready(ctx)
	end(sp, err)
	return err
}

// tracedFeeds adds the feeds and watches to store.
type tracedFeeds struct {
	*store
	feeds feedStore
}

// tracedFull adds the consumer groups to tracedFeeds.
type tracedFull struct {
	*tracedFeeds
	full fullStore
}

func feedAttr(f log.Feed) attribute.KeyValue { return attribute.String("eventlog.feed", f.String()) }

func groupAttr(g string) attribute.KeyValue { return attribute.String("eventlog.group", g) }

func (s *tracedFeeds) ReadFeed(ctx context.Context, r log.FeedRead) (log.FeedPage, error) {
	ctx, sp := s.span(ctx, "ReadFeed", feedAttr(r.Feed), attribute.Int("eventlog.limit", r.Limit))
	p, err := s.feeds.ReadFeed(ctx, r)
	sp.SetAttributes(attribute.Int("eventlog.events", len(p.Events)))
	end(sp, err)
	return p, err
}

func (s *tracedFeeds) CheckFeed(ctx context.Context, r log.FeedRead) error {
	ctx, sp := s.span(ctx, "CheckFeed", feedAttr(r.Feed))
	err := s.feeds.CheckFeed(ctx, r)
	end(sp, err)
	return err
}

func (s *tracedFeeds) FeedEnd(ctx context.Context, feed log.Feed) (string, error) {
	ctx, sp := s.span(ctx, "FeedEnd", feedAttr(feed))
	t, err := s.feeds.FeedEnd(ctx, feed)
	end(sp, err)
	return t, err
}

// Watches are hints, not calls: no span.
func (s *tracedFeeds) WatchFeeds() (<-chan struct{}, func()) { return s.feeds.WatchFeeds() }

func (s *tracedFeeds) Watch(stream log.StreamID) (<-chan struct{}, func()) {
	return s.feeds.Watch(stream)
}

func (s *tracedFull) JoinGroup(ctx context.Context, r log.JoinRequest) (log.Membership, error) {
	ctx, sp := s.span(ctx, "JoinGroup", groupAttr(r.Group), attribute.String("eventlog.member", r.Member))
	m, err := s.full.JoinGroup(ctx, r)
	end(sp, err)
	return m, err
}

func (s *tracedFull) ReadGroup(ctx context.Context, r log.GroupRead) (log.GroupPage, error) {
	ctx, sp := s.span(ctx, "ReadGroup", groupAttr(r.Group), attribute.String("eventlog.member", r.Member))
	p, err := s.full.ReadGroup(ctx, r)
	sp.SetAttributes(attribute.Int("eventlog.events", len(p.Events)))
	end(sp, err)
	return p, err
}

func (s *tracedFull) AckGroup(ctx context.Context, group, member string, acks []log.Ack) ([]log.AckResult, error) {
	ctx, sp := s.span(ctx, "AckGroup", groupAttr(group), attribute.String("eventlog.member", member), attribute.Int("eventlog.acks", len(acks)))
	res, err := s.full.AckGroup(ctx, group, member, acks)
	end(sp, err)
	return res, err
}

func (s *tracedFull) LeaveGroup(ctx context.Context, group, member string) error {
	ctx, sp := s.span(ctx, "LeaveGroup", groupAttr(group), attribute.String("eventlog.member", member))
	err := s.full.LeaveGroup(ctx, group, member)
	end(sp, err)
	return err
}

func (s *tracedFull) DescribeGroup(ctx context.Context, group string) (log.GroupInfo, error) {
	ctx, sp := s.span(ctx, "DescribeGroup", groupAttr(group))
	i, err := s.full.DescribeGroup(ctx, group)
	end(sp, err)
	return i, err
}

func (s *tracedFull) GroupFeed(ctx context.Context, group string) (log.Feed, error) {
	ctx, sp := s.span(ctx, "GroupFeed", groupAttr(group))
	f, err := s.full.GroupFeed(ctx, group)
	end(sp, err)
	return f, err
}

// tracedSecure adds member secrets, group deletion and listing to tracedFull.
type tracedSecure struct {
	*tracedFull
	secure secureStore
}

func (s *tracedSecure) CheckMember(ctx context.Context, group, member, secret string) error {
	ctx, sp := s.span(ctx, "CheckMember", groupAttr(group), attribute.String("eventlog.member", member))
	err := s.secure.CheckMember(ctx, group, member, secret)
	end(sp, err)
	return err
}

func (s *tracedSecure) DeleteGroup(ctx context.Context, group string) error {
	ctx, sp := s.span(ctx, "DeleteGroup", groupAttr(group))
	err := s.secure.DeleteGroup(ctx, group)
	end(sp, err)
	return err
}

func (s *tracedSecure) ListGroups(ctx context.Context, q log.GroupQuery) (log.GroupList, error) {
	ctx, sp := s.span(ctx, "ListGroups", attribute.String("eventlog.after", q.After), attribute.Int("eventlog.limit", q.Limit))
	l, err := s.secure.ListGroups(ctx, q)
	if err == nil {
		sp.SetAttributes(attribute.Int("eventlog.groups", len(l.Groups)))
	}
	end(sp, err)
	return l, err
}

// tracedDiscovery adds the catalog and the cluster view to tracedSecure.
type tracedDiscovery struct {
	*tracedSecure
	disc discoveryStore
}

func (s *tracedDiscovery) ListStreams(ctx context.Context, q log.StreamQuery) (log.StreamPage, error) {
	ctx, sp := s.span(ctx, "ListStreams", attribute.String("eventlog.prefix", q.Prefix), attribute.String("eventlog.category", q.Category))
	p, err := s.disc.ListStreams(ctx, q)
	end(sp, err)
	return p, err
}

func (s *tracedDiscovery) Categories(ctx context.Context, q log.CategoryQuery) (log.CategoryPage, error) {
	ctx, sp := s.span(ctx, "Categories", attribute.String("eventlog.after", q.After))
	c, err := s.disc.Categories(ctx, q)
	end(sp, err)
	return c, err
}

func (s *tracedDiscovery) EventByID(ctx context.Context, id uuid.UUID, visible func(log.StreamID) bool) (log.RecordedEvent, error) {
	ctx, sp := s.span(ctx, "EventByID", attribute.String("eventlog.event_id", id.String()))
	e, err := s.disc.EventByID(ctx, id, visible)
	end(sp, err)
	return e, err
}

func (s *tracedDiscovery) Cluster(ctx context.Context) (log.ClusterInfo, error) {
	ctx, sp := s.span(ctx, "Cluster")
	c, err := s.disc.Cluster(ctx)
	end(sp, err)
	return c, err
}
