package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// smokeStep is one tiny run of a scenario and what it must show.
type smokeStep struct {
	scenario string
	args     []string
	check    func(*Result) error
}

// runSmoke checks that the harness works, in seconds: it serves the API
// in-process on a random loopback port over a fresh keyspace, runs every
// scenario briefly through the same flag parsing, result writing and
// plotting as a real run, re-reads each result file, and checks for
// non-zero throughput and zero errors. It measures nothing worth quoting.
// Both keyspaces it creates are dropped at the end.
func runSmoke(ctx context.Context, e *runEnv) (*Result, error) {
	began := time.Now()
	suffix := randomSuffix()
	ks, baseKS := "bench_smoke_"+suffix, "bench_smoke_b_"+suffix
	hosts := e.cfg.CassandraHosts
	defer dropKeyspaces(hosts, ks, baseKS)

	url, stop, err := serveInProcess(ctx, hosts, ks)
	if err != nil {
		return nil, err
	}
	defer stop()
	dir := e.cfg.Out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "bench-smoke-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}

	common := []string{"--url", url, "--cassandra-hosts", strings.Join(hosts, ",")}
	workload := []string{"--baseline-keyspace", baseKS, "--streams", "200", "--concurrency", "8", "--warmup", "500ms"}
	steps := []smokeStep{
		{"ingest", concat(common, "--streams", "200", "--concurrency", "8", "--warmup", "500ms", "--duration", "2s"), noErrors(1)},
		{"ingest", concat(common, "--expected", "exact", "--dist", "hot", "--streams", "50", "--hot-streams", "2",
			"--events-per-append", "10", "--event-size", "1024", "--concurrency", "8", "--warmup", "0s", "--duration", "1s"), noErrors(1)},
		{"ingest", concat(common, "--rate", "200", "--dist", "zipf", "--streams", "200", "--concurrency", "8", "--warmup", "0s", "--duration", "1s"), noErrors(1)},
		{"baseline", concat(workload, "--cassandra-hosts", strings.Join(hosts, ","), "--duration", "2s"), noErrors(1)},
		{"baseline", concat(workload, "--cassandra-hosts", strings.Join(hosts, ","), "--variant", "plain", "--events-per-append", "5", "--duration", "1s"), noErrors(1)},
		{"baseline", concat(workload, "--cassandra-hosts", strings.Join(hosts, ","), "--variant", "lwt-only", "--duration", "1s"), noErrors(1)},
		{"compare", concat(common, concat(workload, "--round", "1s", "--rounds", "1")...), func(r *Result) error {
			if err := noErrors(2)(r); err != nil {
				return err
			}
			if len(r.Ratios) != 1 || !(r.Ratios[0].Value > 0) {
				return fmt.Errorf("want one positive ratio, got %+v", r.Ratios)
			}
			return nil
		}},
		{"subscribe", concat(common, "--rate", "100", "--streams", "50", "--subscribers", "2", "--warmup", "0s", "--duration", "2s", "--drain", "10s"), subscribeCheck},
		{"subscribe", concat(common, "--feed", "category/smoke", "--rate", "100", "--streams", "50", "--warmup", "0s", "--duration", "1s", "--drain", "10s"), subscribeCheck},
		{"replay", concat(common, "--keyspace", ks, "--events", "2000", "--snapshot-every", "500", "--state-loads", "3", "--compaction-wait", "5s"), func(r *Result) error {
			if err := noErrors(6)(r); err != nil { // build, 4 reads, state
				return err
			}
			if len(r.Ratios) != 3 {
				return fmt.Errorf("want 3 ratios, got %d", len(r.Ratios))
			}
			if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "waited ") }) {
				return fmt.Errorf("no note of the wait for compactions in %q", r.Notes)
			}
			return nil
		}},
	}
	for i, s := range steps {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fmt.Fprintf(e.stdout(), "\n== smoke %d/%d: bench %s %s\n", i+1, len(steps), s.scenario, strings.Join(s.args, " "))
		out := filepath.Join(dir, fmt.Sprintf("%d-%s.json", i+1, s.scenario))
		if err := smokeRun(ctx, e, s, out); err != nil {
			return nil, fmt.Errorf("smoke step %d (%s): %w", i+1, s.scenario, err)
		}
	}
	fmt.Fprintf(e.stdout(), "\nbench smoke: ok, %d scenario runs checked in %.1f s\n", len(steps), time.Since(began).Seconds())
	return &Result{}, nil
}

// smokeRun runs one step as `bench <scenario> <args> --out out` would,
// then re-reads the result file and checks it.
func smokeRun(ctx context.Context, parent *runEnv, s smokeStep, out string) error {
	var flagOut bytes.Buffer
	c, err := parseArgs(s.scenario, concat(s.args, "--out", out), &flagOut)
	if err != nil {
		return fmt.Errorf("flags: %v %s", err, flagOut.String())
	}
	c.ServerPID = os.Getpid()
	e := &runEnv{cfg: &c, stderr: parent.stderr, out: parent.out, started: time.Now()}
	e.procs = findProcs(&c, true)
	if s.scenario == "baseline" {
		e.procs.server, e.procs.more = 0, nil
	}
	res, err := scenarioFunc(s.scenario)(ctx, e)
	if err != nil {
		return err
	}
	if err := finish(e, res, s.args, e.stdout(), e.stderr); err != nil {
		return err
	}
	back, err := readResult(out)
	if err != nil {
		return fmt.Errorf("re-read result: %w", err)
	}
	if len(back.Phases) != len(res.Phases) || back.Scenario != s.scenario {
		return fmt.Errorf("result file holds %d phases of %q, want %d of %q", len(back.Phases), back.Scenario, len(res.Phases), s.scenario)
	}
	for _, suffix := range []string{"-throughput.png", "-latency.png"} {
		if st, err := os.Stat(strings.TrimSuffix(out, ".json") + suffix); err != nil || st.Size() == 0 {
			return fmt.Errorf("plot %s missing", suffix)
		}
	}
	return s.check(back)
}

// noErrors checks that a result has n phases, each with events, a positive
// rate and latencies, and no errors.
func noErrors(n int) func(*Result) error {
	return func(r *Result) error {
		if len(r.Phases) != n {
			return fmt.Errorf("%d phases, want %d", len(r.Phases), n)
		}
		for _, p := range r.Phases {
			if len(p.Errors) > 0 {
				return fmt.Errorf("phase %s: errors %s", p.Name, counts(p.Errors))
			}
			if p.Events == 0 || !(p.EventsPerS > 0) || p.Latency.Count == 0 || p.Latency.P50US <= 0 {
				return fmt.Errorf("phase %s: %d events, %.1f events/s, %d latencies", p.Name, p.Events, p.EventsPerS, p.Latency.Count)
			}
		}
		return nil
	}
}

// subscribeCheck checks a subscribe result: ingest and both delivery
// phases without errors (a missing or duplicated delivery is one), and the
// ratio to the target.
func subscribeCheck(r *Result) error {
	if err := noErrors(3)(r); err != nil {
		return err
	}
	if len(r.Ratios) != 1 || !(r.Ratios[0].Value > 0) {
		return fmt.Errorf("want the delivery p99 ratio, got %+v", r.Ratios)
	}
	return nil
}

// serveInProcess migrates keyspace and serves the eventlog API over it on
// a random loopback port, as cmd/server does.
func serveInProcess(ctx context.Context, hosts []string, keyspace string) (string, func(), error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	o := cassandra.DefaultOptions()
	o.Hosts = hosts
	o.Keyspace = keyspace
	o.Logger = quiet
	if err := cassandra.Migrate(ctx, o); err != nil {
		return "", nil, fmt.Errorf("migrate %s (is Cassandra up? scripts/cassandra up): %w", keyspace, err)
	}
	store, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o})
	if err != nil {
		return "", nil, err
	}
	api, err := httpapi.New(store, httpapi.Config{Logger: quiet})
	if err != nil {
		store.Close()
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		store.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(api.Drain)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "bench smoke: in-process server: %v\n", err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		store.Close()
	}
	return "http://" + ln.Addr().String(), stop, nil
}

func dropKeyspaces(hosts []string, keyspaces ...string) {
	c := gocql.NewCluster(hosts...)
	c.Timeout = time.Minute
	s, err := c.CreateSession()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench smoke: drop keyspaces: %v\n", err)
		return
	}
	defer s.Close()
	for _, ks := range keyspaces {
		// Keyspace names are generated here from [a-z0-9_]: no input
		// reaches this DDL.
		if err := s.Query("DROP KEYSPACE IF EXISTS " + ks).Exec(); err != nil {
			fmt.Fprintf(os.Stderr, "bench smoke: drop keyspace %s: %v\n", ks, err)
		}
	}
}

func randomSuffix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func concat(a []string, b ...string) []string {
	return append(append([]string(nil), a...), b...)
}
