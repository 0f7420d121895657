package httpapi

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config configures a Server. Zero fields take the defaults of
// DefaultConfig through EnsureDefaults.
type Config struct {
	// Peer serves the internal routes other instances call (forwarded
	// appends, flushes), when the store given to New is wrapped (tracing)
	// and so no PeerStore itself. Default: the store, if it is one.
	Peer PeerStore
	// Limits bound events per append, event size and snapshot size.
	// Default log.DefaultLimits().
	Limits log.Limits
	// MaxBodyBytes bounds an append body after decompression. Default 4 MiB.
	// Snapshot bodies are bounded by Limits.MaxSnapshotBytes instead.
	MaxBodyBytes int64
	// DefaultPageSize is the limit of a paged read without one. Default 100.
	DefaultPageSize int
	// MaxPageSize caps a paged read's limit. Default 1000.
	MaxPageSize int
	// FeedPageSize is the limit of a feed page without one, and the size
	// of each read behind a feed stream or subscription (which holds one
	// read's events at a time). Default 1000.
	FeedPageSize int
	// MaxFeedPageSize bounds a feed page's limit; a larger one is
	// rejected. Default 10,000 (the store's bound).
	MaxFeedPageSize int
	// StrictPayloads refuses events whose data or metadata repeat a member
	// name in an object, hold invalid UTF-8 or lone surrogates (also as
	// \u escapes), or nest deeper than MaxPayloadDepth: 400
	// invalid_event. Off by default: a payload's duplicate keys are then
	// stored as sent. Default false.
	StrictPayloads bool
	// MaxPayloadDepth is the deepest nesting of arrays and objects in an
	// event's data or metadata that StrictPayloads allows. Default 64.
	MaxPayloadDepth int
	// MaxPageBytes bounds a JSON page of events (stream, feed or consumer
	// group read): the page
	// ends, with its "next", at the first event past it (an event is never
	// cut). Default 8 MiB.
	MaxPageBytes int
	// MaxSubscriptions bounds the live subscriptions (stream and feed) this
	// server serves at once; more are 429 too_many_subscriptions. Default
	// 1000.
	MaxSubscriptions int
	// MaxSubscriptionsPerKey bounds those of one API key, when Auth is set.
	// Default 100.
	MaxSubscriptionsPerKey int
	// MaxLongReads bounds the long reads this server serves at once: NDJSON
	// replays of a stream, feed reads (JSON pages and NDJSON) and state
	// loads of more than MaxPageSize events; more are 429
	// too_many_long_reads. Each holds up to about 2 × MaxPageBytes (a
	// feed stream's page being written and the next one read), so the
	// default, 32, bounds them to about 512 MiB at the default page bytes
	// with the largest events, far less with small ones.
	MaxLongReads int
	// MaxLongReadsPerKey bounds those of one API key, when Auth is set, so
	// that one key's replays cannot refuse every other key's reads, and
	// likewise its consumer group reads (counted apart, at most
	// MaxGroupReads). Default a quarter of MaxLongReads (at least 1).
	MaxLongReadsPerKey int
	// MaxGroupReads bounds the consumer group reads this server serves at
	// once, counted apart from the long reads, so that replays never make
	// a group's members wait, nor do they replays; more are 429
	// too_many_long_reads. Each holds a page, up to about 2 ×
	// MaxPageBytes, as a long read does. Default MaxLongReads.
	MaxGroupReads int
	// RateLimit is the requests per second of each API key whose own rate
	// (auth.Key.RateLimit) is 0; 0 means no limit. Default 0.
	RateLimit float64
	// RateBurst is how many requests a key may make at once. Default: its
	// rate (at least 1).
	RateBurst int
	// MaxBulkLineBytes bounds one line of a bulk append, after
	// decompression. Default MaxBodyBytes.
	MaxBulkLineBytes int
	// MaxBulkLines bounds the lines of one bulk request, blank ones
	// included. Default 10,000.
	MaxBulkLines int
	// MaxBulkBytes bounds a whole bulk request body after decompression.
	// Default 64 MiB.
	MaxBulkBytes int64
	// BulkTimeout is the one deadline of a bulk request: reading its body
	// and appending its lines. Default 5m.
	BulkTimeout time.Duration
	// WriteTimeout is how long one write of a streamed response (replay,
	// page, bulk results) may take: every flush extends the connection's
	// write deadline by it, so long streams live as long as the client
	// keeps reading. Default (and what 0 becomes) 30s.
	WriteTimeout time.Duration
	// ReadTimeout is the http.Server's read timeout, which a streamed
	// response lifts (the request has been read). Default 30s.
	ReadTimeout time.Duration
	// RecordTraceparent records each append's W3C traceparent header in
	// the metadata ("traceparent") of its events that carry none, so a
	// consumer can continue the trace. Default off.
	RecordTraceparent bool
	// AppendTimeout bounds one append (or snapshot write). Appends are
	// detached from the client's cancellation, so a client that hangs up
	// does not turn a write into an unknown outcome, and graceful shutdown
	// lets them finish. Default 30s.
	AppendTimeout time.Duration
	// ReadyTimeout bounds the store check of /readyz. Default 3s.
	ReadyTimeout time.Duration
	// SubscribePoll is how often a live subscription looks for events
	// appended through other server instances (appends through this one
	// wake it at once). Default 1s.
	SubscribePoll time.Duration
	// Heartbeat is the idle time after which a live subscription sends a
	// heartbeat, so proxies keep the connection open. Default 15s.
	Heartbeat time.Duration
	// Auth, if set, requires an API key (Authorization: Bearer) on every
	// route but /healthz, /readyz and the console's files (/ui) and checks
	// its scopes on each request; nil serves everything to everyone but
	// the admin key routes (loopback use only: the server refuses that on
	// other listeners).
	Auth *auth.Authenticator
	// Keys, if set, backs the admin key routes (/v1/admin/keys); nil
	// answers them 501. Without Auth they are refused whatever Keys is
	// (403 authentication_disabled). Usually Auth's store.
	Keys auth.KeyStore
	// AllowedHosts, if not empty, are the host names (without port) a
	// request's Host header may carry; others are 421 invalid_host. It
	// guards loopback listeners against DNS rebinding.
	AllowedHosts []string
	// Logger receives request and error logs. Default slog.Default().
	Logger *slog.Logger
	// AccessLog is which requests are logged at info level: "errors"
	// (default: answers of 400 and above, and aborted ones) or "all". The
	// others are logged at debug level: at thousands of appends a second a
	// line per request costs more than a tenth of the server's CPU.
	AccessLog string
	// Registry receives the HTTP metrics and is served on /metrics; pass the
	// same registry to the store so its metrics are served too. Default: a
	// new registry.
	Registry *prometheus.Registry
	// TracerProvider traces each request as a server span, continuing the
	// W3C traceparent the request carries. Default: no tracing (no-op).
	TracerProvider trace.TracerProvider
	// Console, if set, serves the web console (package console) at /ui,
	// /ui/ and /ui/{asset}, without authentication: its files hold no
	// data, and every call it makes to the API carries the user's token.
	// Nil: no /ui routes.
	Console http.Handler
	// DisableCompression sends every response as it is. By default JSON,
	// problem and NDJSON responses of at least 1 KiB are gzip- or
	// zstd-encoded when the request's Accept-Encoding asks for it
	// (compress.go); live subscriptions never are. Default false.
	DisableCompression bool
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	var c Config
	c.EnsureDefaults()
	return c
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.Limits == (log.Limits{}) {
		c.Limits = log.DefaultLimits()
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.DefaultPageSize == 0 {
		c.DefaultPageSize = 100
	}
	if c.MaxPageSize == 0 {
		c.MaxPageSize = 1000
	}
	if c.FeedPageSize == 0 {
		c.FeedPageSize = 1000
	}
	if c.MaxFeedPageSize == 0 {
		c.MaxFeedPageSize = 10_000
	}
	if c.MaxBulkLineBytes == 0 {
		c.MaxBulkLineBytes = int(c.MaxBodyBytes)
	}
	if c.MaxBulkLines == 0 {
		c.MaxBulkLines = 10_000
	}
	if c.MaxPageBytes == 0 {
		c.MaxPageBytes = 8 << 20
	}
	if c.MaxPayloadDepth == 0 {
		c.MaxPayloadDepth = 64
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 1000
	}
	if c.MaxSubscriptionsPerKey == 0 {
		c.MaxSubscriptionsPerKey = 100
	}
	if c.MaxLongReads == 0 {
		c.MaxLongReads = 32
	}
	if c.MaxLongReadsPerKey == 0 {
		c.MaxLongReadsPerKey = max(1, c.MaxLongReads/4)
	}
	if c.MaxGroupReads == 0 {
		c.MaxGroupReads = c.MaxLongReads
	}
	if c.MaxBulkBytes == 0 {
		c.MaxBulkBytes = 64 << 20
	}
	if c.BulkTimeout == 0 {
		c.BulkTimeout = 5 * time.Minute
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.AppendTimeout == 0 {
		c.AppendTimeout = 30 * time.Second
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 3 * time.Second
	}
	if c.SubscribePoll == 0 {
		c.SubscribePoll = time.Second
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AccessLog == "" {
		c.AccessLog = "errors"
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.AccessLog != "" && c.AccessLog != "errors" && c.AccessLog != "all":
		return errors.New(`access log must be "errors" or "all"`)
	case c.Limits.MaxEventsPerAppend < 1, c.Limits.MaxEventBytes < 1, c.Limits.MaxSnapshotBytes < 1:
		return errors.New("limits must be positive")
	case c.MaxBodyBytes < 1:
		return errors.New("max body bytes must be positive")
	case c.MaxPageSize < 1:
		return errors.New("max page size must be positive")
	case c.DefaultPageSize < 1 || c.DefaultPageSize > c.MaxPageSize:
		return fmt.Errorf("default page size must be 1..%d", c.MaxPageSize)
	case c.MaxFeedPageSize < 1 || c.MaxFeedPageSize > 10_000:
		return errors.New("max feed page size must be 1..10000")
	case c.FeedPageSize < 1 || c.FeedPageSize > c.MaxFeedPageSize:
		return fmt.Errorf("feed page size must be 1..%d", c.MaxFeedPageSize)
	case c.RateLimit < 0 || c.RateBurst < 0:
		return errors.New("rate limit and burst must not be negative")
	case c.MaxPayloadDepth < 1:
		return errors.New("max payload depth must be positive")
	case c.MaxPageBytes < 1 || c.MaxSubscriptions < 1 || c.MaxSubscriptionsPerKey < 1 || c.MaxLongReads < 1 || c.MaxGroupReads < 1:
		return errors.New("page bytes, subscription, long read and group read limits must be positive")
	case c.MaxLongReadsPerKey < 1 || c.MaxLongReadsPerKey > c.MaxLongReads:
		return fmt.Errorf("long reads per key must be 1..%d (the long read limit)", c.MaxLongReads)
	case c.MaxBulkLineBytes < 1 || c.MaxBulkLines < 1 || c.MaxBulkBytes < 1 || c.BulkTimeout <= 0:
		return errors.New("bulk limits must be positive")
	case c.WriteTimeout < 0 || c.ReadTimeout < 0 || c.AppendTimeout <= 0 || c.ReadyTimeout <= 0:
		return errors.New("timeouts must not be negative")
	case c.SubscribePoll < 0 || c.Heartbeat < 0:
		// A poll ticker panics on a negative interval (the process dies at
		// the first subscription), a negative heartbeat timer spins.
		return errors.New("subscribe poll and heartbeat must not be negative")
	}
	return nil
}

// Server serves a log.Store over HTTP. It is an http.Handler.
type Server struct {
	store log.Store
	// feeds is store as a log.FeedStore; nil if it reads no feeds (the
	// feed routes then answer 501).
	feeds log.FeedStore
	// catalog and cluster are store's discovery side; nil when it has
	// none (the discovery routes then answer 501).
	catalog log.Catalog
	cluster log.ClusterStore
	// peer serves the internal routes (Config.Peer, else store); nil: they
	// answer 501. peerKey is its PeerKey.
	peer    PeerStore
	peerKey []byte
	// cursor seals the next of a stream listing that ended on a stream
	// the key may not read (listcursor.go).
	cursor cipher.AEAD
	cfg    Config
	log    *slog.Logger
	echo   *echo.Echo
	// handler serves requests: echo, behind the compressor unless
	// Config.DisableCompression.
	handler http.Handler
	metrics *metrics
	// floods are the gates of the log lines a client can cause at will,
	// by kind (logflood.go); never changed after New.
	floods map[string]*floodGate
	tracer trace.Tracer
	traced bool // cfg.TracerProvider is not the no-op one
	// draining is set by Drain: /readyz fails and running replays end.
	draining atomic.Bool
	// drained is closed by Drain: live subscriptions waiting for events
	// end at once (follow).
	drained   chan struct{}
	drainOnce sync.Once
	// ready is the last store check of /readyz (health.go).
	ready readiness
	// allowedHosts is Config.AllowedHosts as a set (normalHost); nil: any.
	allowedHosts map[string]bool
	subs         slots
	// longReads counts the long reads being served (MaxLongReads).
	longReads slots
	// groupReads counts the consumer group reads being served
	// (MaxGroupReads).
	groupReads slots
	// Pollers shared by the live subscriptions of one stream or feed.
	buckets       buckets
	streamPollers pollerSet[int64]
	feedPollers   pollerSet[uint64]
}

// New returns a Server over store.
func New(store log.Store, cfg Config) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{store: store, cfg: cfg, log: slog.New(contextHandler{cfg.Logger.Handler()}), metrics: m,
		tracer: cfg.TracerProvider.Tracer("github.com/eventlog/eventlog/internal/httpapi"), drained: make(chan struct{})}
	s.streamPollers.kind, s.streamPollers.log = "stream", s.log
	s.feedPollers.kind, s.feedPollers.log = "feed", s.log
	s.floods = map[string]*floodGate{}
	for _, kind := range []string{floodUnauthenticated, floodInvalidHost, floodTLSHandshake} {
		s.floods[kind] = newFloodGate(m.suppressed, kind)
	}
	for status := 400; status < 500; status++ {
		if kind := floodClientError + strconv.Itoa(status); status != 401 && status != 421 {
			s.floods[kind] = newLazyFloodGate(m.suppressed, kind)
		}
	}
	_, untraced := cfg.TracerProvider.(noop.TracerProvider)
	s.traced = !untraced
	s.feeds, _ = store.(log.FeedStore)
	s.catalog, _ = store.(log.Catalog)
	s.cluster, _ = store.(log.ClusterStore)
	if s.peer = cfg.Peer; s.peer == nil {
		s.peer, _ = store.(PeerStore)
	}
	if s.peer != nil {
		// Fail closed: an empty key would sign and accept anything.
		if s.peerKey = s.peer.PeerKey(); len(s.peerKey) < 16 {
			return nil, errors.New("httpapi: the store's peer key is missing or shorter than 16 bytes")
		}
	}
	if s.cursor, err = newListCursor(s.peerKey); err != nil {
		return nil, err
	}
	s.subs = newSlots(cfg.MaxSubscriptions, cfg.MaxSubscriptionsPerKey)
	s.longReads = newSlots(cfg.MaxLongReads, cfg.MaxLongReadsPerKey)
	s.groupReads = newSlots(cfg.MaxGroupReads, min(cfg.MaxLongReadsPerKey, cfg.MaxGroupReads))
	if len(cfg.AllowedHosts) > 0 {
		s.allowedHosts = make(map[string]bool, len(cfg.AllowedHosts))
		for _, h := range cfg.AllowedHosts {
			s.allowedHosts[normalHost(h)] = true
		}
	}
	e := echo.NewWithConfig(echo.Config{
		Logger:           cfg.Logger,
		HTTPErrorHandler: s.errorHandler,
		// Decode %xx in path parameters after routing: a stream id is
		// validated in its decoded form, and an encoded '/' can never
		// reach another route. Every GET route answers HEAD (head.go).
		Router: echo.NewRouter(echo.RouterConfig{UnescapePathParamValues: true, AutoHandleHEAD: true}),
	})
	e.Use(s.observe, s.secure, s.authenticate, s.rateLimit)
	s.routes(e)
	s.echo, s.handler = e, e
	if !cfg.DisableCompression {
		if s.handler, err = compressor(e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) routes(e *echo.Echo) {
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsHandler(), s.requireAdmin)
	e.GET("/openapi.json", s.openapi)
	if s.cfg.Console != nil {
		h := echo.WrapHandler(s.cfg.Console)
		e.GET("/ui", h)
		e.GET("/ui/", h)
		e.GET("/ui/:asset", h)
	}

	e.POST(forwardPath, s.appendForwarded)
	e.POST(flushPath, s.flushForwarded)

	v1 := e.Group("/v1")
	v1.POST("/streams/:stream/events", s.appendEvents, limitBody(s.cfg.MaxBodyBytes))
	v1.GET("/streams/:stream/events", s.readEvents)
	v1.GET("/streams", s.listStreams)
	v1.GET("/categories", s.listCategories)
	v1.GET("/events/:id", s.eventByID)
	v1.GET("/cluster", s.clusterInfo, s.requireAdmin)
	v1.GET("/streams/:stream", s.streamInfo)
	v1.PUT("/streams/:stream/snapshots/:version", s.putSnapshot, limitBody(int64(s.cfg.Limits.MaxSnapshotBytes)))
	v1.GET("/streams/:stream/snapshots/latest", s.latestSnapshot)
	v1.GET("/streams/:stream/state", s.state)
	v1.GET("/streams/:stream/subscribe", s.subscribe)
	// Feeds: "all" takes no name, so it has static routes; /feeds/:kind
	// alone only answers invalid_feed (an unknown kind, or a missing name).
	v1.GET("/feeds/all", s.readFeed)
	v1.GET("/feeds/all/subscribe", s.subscribeFeed)
	v1.GET("/feeds/:kind", s.readFeed)
	v1.GET("/feeds/:kind/:name", s.readFeed)
	v1.GET("/feeds/:kind/:name/subscribe", s.subscribeFeed)
	// A bulk body is bounded as a whole, as well as by its line count and
	// line size.
	v1.POST("/events", s.bulkAppend, limitBody(s.cfg.MaxBulkBytes))
	s.groupRoutes(v1)
	v1.POST("/admin/keys", s.createKey, s.requireAdmin, limitBody(maxAdminBody))
	v1.GET("/admin/keys", s.listKeys, s.requireAdmin)
	v1.DELETE("/admin/keys/:name", s.revokeKey, s.requireAdmin)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain prepares for shutdown: /readyz reports 503 so load balancers stop
// sending traffic, running NDJSON replays end (the client sees the
// stream cut and resumes from its last version elsewhere), and live
// subscriptions end, also those waiting for events (until they end,
// http.Server.Shutdown waits for them). In-flight appends are not
// affected. Register it with http.Server.RegisterOnShutdown.
func (s *Server) Drain() {
	s.drainOnce.Do(func() {
		s.draining.Store(true)
		close(s.drained)
	})
}

// errDraining ends a replay on shutdown.
var errDraining = fmt.Errorf("server shutting down: %w", log.ErrUnavailable)
