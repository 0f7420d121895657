// Command users runs the users example: the CQRS user-management system
// of the event sourcing literature, over an eventlog server.
//
//	go run ./examples/users/cmd/users [flags]
//
// It serves commands and queries on --listen (see package web), writes
// events to eventlog through the public client, and runs the projection
// that keeps the read model (Cassandra keyspace --keyspace) up to date
// from the "user" category feed. examples/users/README.md walks through
// it with curl.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/commands"
	"github.com/eventlog/eventlog/examples/users/readmodel"
	"github.com/eventlog/eventlog/examples/users/user"
	"github.com/eventlog/eventlog/examples/users/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.Config.ParseFlags("users", os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "users: %v\n", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		m.Logger.Error("start failed", "err", err)
		m.Close()
		os.Exit(1)
	}
	m.Logger.Info("users example listening", "url", m.URL(), "eventlog", m.Config.EventlogURL)
	code := 0
	select {
	case <-ctx.Done():
	case err := <-m.serveErr:
		m.Logger.Error("http server stopped", "err", err)
		code = 1
	}
	stop()
	if err := m.Close(); err != nil {
		m.Logger.Error("shutdown", "err", err)
		code = 1
	}
	os.Exit(code)
}

// Main is the running example; tests start it on port 0.
type Main struct {
	Config Config
	Logger *slog.Logger

	ln       net.Listener
	srv      *http.Server
	store    *readmodel.Store
	serveErr chan error
	cancel   context.CancelFunc // stops the projection
	wg       sync.WaitGroup
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Logger: slog.Default(), serveErr: make(chan error, 1)}
}

// Run connects to eventlog and the read model, starts the projection and
// the HTTP API, and returns; Close stops them.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	c, err := client.New(client.Options{BaseURL: cfg.EventlogURL, UserAgent: "users-example"})
	if err != nil {
		return err
	}
	cmds, err := commands.New(c, commands.Options{
		SnapshotEvery: cfg.SnapshotEvery,
		// A reservation may be taken over only once no command can still
		// be appending with it: its timeout, plus the server's append
		// timeout (30s) for an append sent just before it.
		ReservationGrace: max(2*time.Minute, 2*(cfg.CommandTimeout+30*time.Second)),
		Logger:           m.Logger,
	})
	if err != nil {
		return err
	}
	if m.store, err = readmodel.Open(ctx, readmodel.Options{Hosts: cfg.CassandraHosts, Keyspace: cfg.Keyspace}); err != nil {
		return err
	}
	if m.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return err
	}

	// The projection: the consumer group hands every event of the "user"
	// category to readmodel.Project.
	opts := client.ConsumeOptions{Feed: client.CategoryFeed(user.Category), Member: cfg.Member, Batch: cfg.Batch}
	pctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Go(func() {
		for n := 1; ; n++ {
			err := c.Consume(pctx, cfg.Group, opts, func(ctx context.Context, ev client.FeedEvent) error {
				return readmodel.Project(ctx, m.store, ev)
			})
			if pctx.Err() != nil {
				return
			}
			m.Logger.Error("projection stopped; restarting", "group", cfg.Group, "err", err)
			if sleep(pctx, backoff(n)) != nil {
				return
			}
		}
	})

	m.srv = &http.Server{
		Handler:           web.New(cmds, m.store, cfg.CommandTimeout, m.Logger),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.CommandTimeout + 30*time.Second,
	}
	m.wg.Go(func() {
		if err := m.srv.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
			m.serveErr <- err
		}
	})
	return nil
}

// URL is the base URL of the example's API.
func (m *Main) URL() string { return "http://" + m.ln.Addr().String() }

// Close stops the HTTP API (letting commands in flight finish), then the
// projection, and closes the read model.
func (m *Main) Close() error {
	var err error
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.CommandTimeout+time.Second)
		err = m.srv.Shutdown(ctx)
		cancel()
	} else if m.ln != nil {
		m.ln.Close()
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.store != nil {
		m.store.Close()
	}
	return err
}

// backoff is 100ms doubling to 5s.
func backoff(n int) time.Duration {
	return min(100*time.Millisecond<<min(n-1, 6), 5*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
