package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Main is the server program: Run starts it, Close stops it gracefully.
// Tests start a whole server on port 0 with it.
type Main struct {
	Config Config
	// Logger, if set, replaces the logger built from Config.
	Logger *slog.Logger
	// Stderr receives the logs built from Config. Default os.Stderr.
	Stderr io.Writer
	// StoreOptions, if set, adjusts the store options before Open (tests
	// install fault hooks through it).
	StoreOptions func(*shardstore.Options)

	log   *slog.Logger
	store *shardstore.Store
	// stopTracing flushes and stops the tracer provider.
	stopTracing func(context.Context) error
	keys        *gocql.Session // the API key store's own session
	auth        *auth.Authenticator
	api         *httpapi.Server
	ln          net.Listener
	srv         *http.Server
	pprof       *http.Server
	metrics     *http.Server
	mln         net.Listener
	pln         net.Listener
	serveErr    chan error
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Stderr: os.Stderr, serveErr: make(chan error, 2)}
}

func (m *Main) logger() *slog.Logger {
	if m.log != nil {
		return m.log
	}
	if m.Logger != nil {
		m.log = m.Logger
		return m.log
	}
	level, err := parseLevel(m.Config.LogLevel)
	if err != nil {
		level = slog.LevelInfo
	}
	w := m.Stderr
	if w == nil {
		w = os.Stderr
	}
	opts := &slog.HandlerOptions{Level: level}
	if m.Config.LogFormat == "text" {
		m.log = slog.New(slog.NewTextHandler(w, opts))
	} else {
		m.log = slog.New(slog.NewJSONHandler(w, opts))
	}
	return m.log
}

// Migrate creates the keyspace if needed and applies missing migrations.
func (m *Main) Migrate(ctx context.Context) error {
	o := m.Config.cassandraOptions(m.logger(), nil)
	m.logger().Info("migrating", "keyspace", o.Keyspace, "hosts", o.Hosts, "replication", o.Replication)
	if err := cassandra.Migrate(ctx, o); err != nil {
		return fmt.Errorf("migrate keyspace %s: %w", o.Keyspace, m.Config.cassandraHint(err))
	}
	m.logger().Info("schema up to date", "keyspace", o.Keyspace, "version", cassandra.LatestSchemaVersion())
	return nil
}

// Run binds its listeners and reads its certificate, opens the store
// (migrating first with --migrate), and serves in the background. It
// returns once the server accepts connections, or with the reason it
// cannot: in particular it refuses to serve a keyspace whose schema
// version this binary does not know. A listener it cannot bind or a
// certificate it cannot read is refused before Cassandra is touched.
func (m *Main) Run(ctx context.Context) (err error) {
	logger := m.logger()
	if m.serveErr == nil {
		m.serveErr = make(chan error, 2)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	defer func() {
		if err != nil {
			m.closeListeners() // those not yet served
		}
	}()
	var certs *certReloader
	if m.Config.TLSCertFile != "" {
		if certs, err = newCertReloader(m.Config.TLSCertFile, m.Config.TLSKeyFile, logger); err != nil {
			return err
		}
	}
	if m.ln, err = net.Listen("tcp", m.Config.Listen); err != nil {
		return err
	}
	if m.Config.PprofListen != "" {
		if m.pln, err = net.Listen("tcp", m.Config.PprofListen); err != nil {
			return fmt.Errorf("pprof listener: %w", err)
		}
	}
	if m.Config.MetricsListen != "" {
		if m.mln, err = net.Listen("tcp", m.Config.MetricsListen); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
	}

	if m.Config.Migrate {
		if err := m.Migrate(ctx); err != nil {
			return err
		}
	}
	o := m.Config.cassandraOptions(logger, reg)
	store, err := m.openStore(ctx, o)
	err = m.Config.cassandraHint(err)
	if errors.Is(err, cassandra.ErrOldLayout) {
		logger.Error("refusing to serve: the keyspace has the per-stream layout of an earlier build, which this server does not read; serve a new keyspace (--keyspace <new name> --migrate)",
			"keyspace", o.Keyspace, "error", err)
		return fmt.Errorf("open store: %w", err)
	}
	if errors.Is(err, cassandra.ErrSchemaNewer) {
		logger.Error("refusing to serve: a newer binary migrated the keyspace; upgrade this server (migrating with it cannot help)",
			"keyspace", o.Keyspace, "error", err)
		return fmt.Errorf("open store: %w", err)
	}
	if errors.Is(err, cassandra.ErrSchemaMismatch) {
		logger.Error("refusing to serve: the keyspace's schema is not the version this binary knows; run `server migrate` (or start with --migrate)",
			"keyspace", o.Keyspace, "error", err)
		return fmt.Errorf("open store: %w", err)
	}
	if err != nil {
		return fmt.Errorf("open store on %v keyspace %s: %w", o.Hosts, o.Keyspace, err)
	}
	m.store = store

	tracingOn := tracing.Enabled(m.Config.Tracing, os.Getenv)
	tp, stop, err := tracing.Setup(ctx, tracingOn, versionString(), os.Getenv, logger)
	if err != nil {
		return err
	}
	m.stopTracing = stop
	hc := m.Config.httpConfig(logger, reg)
	hc.TracerProvider = tp
	hc.Peer = store // also when served is the tracing wrapper
	var served log.Store = store
	if tracingOn {
		served = tracing.Store(store, tp)
		logger.Info("tracing on: exporting spans over OTLP/HTTP (OTEL_* variables)")
	}
	if err := m.openAuth(ctx, o, &hc); err != nil {
		return err
	}
	if m.api, err = httpapi.New(served, hc); err != nil {
		return err
	}
	m.srv = &http.Server{
		Handler:           m.api,
		ReadHeaderTimeout: m.Config.ReadHeaderTimeout,
		ReadTimeout:       m.Config.ReadTimeout,
		WriteTimeout:      m.Config.WriteTimeout,
		IdleTimeout:       m.Config.IdleTimeout,
		MaxHeaderBytes:    m.Config.MaxHeaderBytes,
		// Counts failed TLS handshakes and limits their lines: anyone
		// can cause them.
		ErrorLog: m.api.ErrorLog(),
	}
	m.srv.RegisterOnShutdown(m.api.Drain)
	if certs != nil {
		m.srv.TLSConfig = serverTLS(certs)
	}
	go m.serve(m.srv, m.ln)

	if pln := m.pln; pln != nil {
		m.pprof = m.internalServer(httpapi.HostGuard(pprofMux(), m.Config.allowedHostsFor(m.Config.PprofListen)))
		go m.serve(m.pprof, pln)
		logger.Info("pprof listening", "addr", pln.Addr().String())
	}
	if mln := m.mln; mln != nil {
		mux := http.NewServeMux()
		if m.Config.pprofOn(m.Config.MetricsListen) {
			mux = pprofMux()
		} else {
			logger.Info("pprof not served on --metrics-listen: it is not a loopback address (--pprof-public serves it there)", "addr", mln.Addr().String())
		}
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		m.metrics = m.internalServer(httpapi.HostGuard(mux, m.Config.allowedHostsFor(m.Config.MetricsListen)))
		go m.serve(m.metrics, mln)
		logger.Info("metrics listening", "addr", mln.Addr().String())
	}
	scheme := "http"
	if certs != nil {
		scheme = "https"
	}
	logger.Info("listening", "addr", m.Addr(), "scheme", scheme, "auth", hc.Auth != nil, "keyspace", o.Keyspace, "hosts", o.Hosts, "version", versionString())
	if w := m.Config.advertiseWarning(); w != "" {
		logger.Warn(w)
	}
	return nil
}

// closeListeners closes the listeners Run bound but did not serve, after
// it failed: Addr then says "" (not listening).
func (m *Main) closeListeners() {
	if m.srv == nil && m.ln != nil {
		m.ln.Close()
		m.ln = nil
	}
	if m.pprof == nil && m.pln != nil {
		m.pln.Close()
		m.pln = nil
	}
	if m.metrics == nil && m.mln != nil {
		m.mln.Close()
		m.mln = nil
	}
}

// openAuth sets up the API key store on the store's session and, when
// --auth resolves to required, the authenticator that checks every
// request.
func (m *Main) openAuth(ctx context.Context, o cassandra.Options, h *httpapi.Config) error {
	required, err := m.Config.authRequired()
	if err != nil {
		return err
	}
	// A session of its own: the key store does not depend on the write
	// path's store.
	if m.keys, err = cassandra.Connect(ctx, o); err != nil {
		return fmt.Errorf("api key store: %w", m.Config.cassandraHint(err))
	}
	ks, err := keystore.New(m.keys, o.SerialConsistency, o.Timeout)
	if err != nil {
		return err
	}
	h.Keys = ks
	h.AllowedHosts = m.Config.allowedHosts()
	if !required {
		m.logger().Info("authentication off: every listener is a loopback address (--auth)")
		return nil
	}
	ao := auth.Options{Logger: m.logger()}
	if h.Registry != nil {
		ao.Registerer = h.Registry
	}
	m.auth = auth.NewAuthenticator(ks, ao)
	if err := m.auth.Start(ctx); err != nil {
		return fmt.Errorf("authentication: %w", err)
	}
	h.Auth = m.auth
	admins := 0
	keys, _ := ks.Keys(ctx)
	for i := range keys {
		if keys[i].Active(m.auth.Now()) && keys[i].IsAdmin() {
			admins++
		}
	}
	if admins == 0 {
		m.logger().Warn("authentication required and no active admin key: create one with `server keys create --name admin --scope admin`")
	}
	return nil
}

func (m *Main) serve(srv *http.Server, ln net.Listener) {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		m.serveErr <- err
	}
}

// ServeErr reports a listener that failed while serving.
func (m *Main) ServeErr() <-chan error { return m.serveErr }

// Addr is the API's listen address (with the port chosen for :0).
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// MetricsAddr is the address of the --metrics-listen listener ("" if
// none).
func (m *Main) MetricsAddr() string {
	if m.mln == nil {
		return ""
	}
	return m.mln.Addr().String()
}

// PprofAddr is the address of the --pprof-listen listener ("" if none).
func (m *Main) PprofAddr() string {
	if m.pln == nil {
		return ""
	}
	return m.pln.Addr().String()
}

// Close shuts down gracefully: it starts handing the shards over to the
// other instances (shardstore.Store.Leave), stops accepting connections,
// ends running replays, waits up to ShutdownTimeout for in-flight
// requests (an append under way completes and is answered, forwarded to
// its shard's new owner if need be), then closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.store != nil && m.srv != nil {
		// The listener closes first: hand the shards to the other
		// instances now, so that their appends go to an owner that takes
		// them while the requests in flight here finish. (Leave returns
		// at once; its writes go on in the background.)
		m.store.Leave(context.Background())
	}
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		if err := m.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("graceful shutdown: %w", err))
			m.srv.Close()
		}
		cancel()
		m.srv = nil
	}
	if m.pprof != nil {
		m.pprof.Close()
		m.pprof = nil
	}
	if m.metrics != nil {
		m.metrics.Close()
		m.metrics = nil
	}
	if m.auth != nil {
		m.auth.Close()
		m.auth = nil
	}
	if m.store != nil {
		m.store.Close()
		m.store = nil
	}
	// After the store: the shards' handover first, the key store's
	// session (whose close can take up to 10 s) then.
	if m.keys != nil {
		if !cassandra.CloseSession(m.keys) {
			m.logger().Warn("the key store's Cassandra session did not close within 10 s; going on")
		}
		m.keys = nil
	}
	if m.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := m.stopTracing(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush traces: %w", err))
		}
		cancel()
		m.stopTracing = nil
	}
	if len(errs) == 0 && m.log != nil {
		m.log.Info("stopped")
	}
	return errors.Join(errs...)
}

// openStore opens the shard-log store. It forwards appends for shards
// another instance owns to that instance's advertise address; this one's
// is --advertise, or the address it listens on (https:// when it serves
// HTTPS).
func (m *Main) openStore(ctx context.Context, o cassandra.Options) (*shardstore.Store, error) {
	addr := m.Config.Advertise
	if addr == "" {
		addr = m.ln.Addr().String()
	}
	// An instance that serves HTTPS advertises an https:// address, and
	// forwards to others only over HTTPS, verifying their certificates.
	https := m.Config.TLSCertFile != ""
	peerTLS, err := m.Config.peerTLS()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = peerTLS
	// Straight to the other instances, never through HTTP(S)_PROXY: a
	// proxy's refusal would read as an answer whose outcome is unknown.
	tr.Proxy = nil
	// Requests to other instances are signed with the store's peer key,
	// known once it is open (nothing is forwarded before).
	var opened atomic.Pointer[shardstore.Store]
	peers := httpapi.Peers{Client: &http.Client{Timeout: m.Config.WriteTimeout, Transport: tr}, RequireTLS: https, MaxBatchBytes: int(m.Config.MaxBodyBytes),
		Logger: m.logger(),
		Key: func() []byte {
			if st := opened.Load(); st != nil {
				return st.PeerKey()
			}
			return nil
		}}
	so := shardstore.Options{
		Cassandra: o, Address: httpapi.PeerAddress(addr, https), LeaseTTL: m.Config.ShardLeaseTTL, Version: versionString(),
		Forward:         httpapi.Forwarder(peers),
		FlushRemote:     httpapi.FlushForwarder(peers),
		FillDelay:       m.Config.FillDelay,
		NoBlocks:        !m.Config.CompactBlocks,
		TailBytes:       int(m.Config.TailBytes),
		IDBudget:        m.Config.IDsInMemory,
		NoIndex:         !m.Config.DiscoveryIndex,
		CommitsInFlight: m.Config.CommitsInFlight,
		MaxGroups:       m.Config.MaxGroups,
		MaxGroupMembers: m.Config.MaxGroupMembers,
	}
	if m.StoreOptions != nil {
		m.StoreOptions(&so)
	}
	st, err := shardstore.Open(ctx, so)
	if err != nil {
		return nil, err
	}
	opened.Store(st)
	return st, nil
}

// internalServer is the http.Server of the --metrics-listen and
// --pprof-listen listeners: the API's limits on headers and idle
// keep-alive connections (these listeners need no key, so anyone who
// reaches them could otherwise hold connections open for ever), but no
// read or write timeout, which would cut a pprof profile or trace longer
// than them.
func (m *Main) internalServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: m.Config.ReadHeaderTimeout,
		IdleTimeout:       m.Config.IdleTimeout,
		MaxHeaderBytes:    m.Config.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(m.logger().Handler(), slog.LevelWarn),
	}
}

// pprofMux serves net/http/pprof on its own mux, for the internal listener
// only (never on the API's).
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
