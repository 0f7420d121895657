package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// Config is one run's settings; each field is a flag of the scenarios that
// use it (see flagSet).
type Config struct {
	Scenario string `json:"scenario"`

	// Where.
	URL              string   `json:"url,omitempty"`               // --url: the eventlog server
	SpreadURLs       []string `json:"spread_urls,omitempty"`       // --spread-urls: more servers the appends go to
	Route            string   `json:"route,omitempty"`             // --route: how appends pick among --url and --spread-urls
	HTTPClient       string   `json:"http_client,omitempty"`       // --http-client: fasthttp or net
	CassandraHosts   []string `json:"cassandra_hosts,omitempty"`   // --cassandra-hosts
	Keyspace         string   `json:"keyspace,omitempty"`          // --keyspace: the server's (replay's raw reads)
	BaselineKeyspace string   `json:"baseline_keyspace,omitempty"` // --baseline-keyspace
	ServerPID        int      `json:"server_pid,omitempty"`        // --server-pid (0: find the process listening on --url)
	CassandraPID     int      `json:"cassandra_pid,omitempty"`     // --cassandra-pid (0: find CassandraDaemon)
	AllowRemote      bool     `json:"allow_remote,omitempty"`      // --allow-remote: addresses off this machine
	Out              string   `json:"-"`                           // --out: result file
	NoPlots          bool     `json:"-"`                           // --no-plots
	CPUProfile       string   `json:"-"`                           // --cpuprofile

	// Ingest and baseline workload.
	Streams         int           `json:"streams,omitempty"`           // --streams
	Dist            string        `json:"dist,omitempty"`              // --dist uniform|zipf|hot
	ZipfS           float64       `json:"zipf_s,omitempty"`            // --zipf-s
	HotStreams      int           `json:"hot_streams,omitempty"`       // --hot-streams
	HotShare        float64       `json:"hot_share,omitempty"`         // --hot-share
	EventsPerAppend int           `json:"events_per_append,omitempty"` // --events-per-append
	EventSize       int           `json:"event_size,omitempty"`        // --event-size
	Expected        string        `json:"expected,omitempty"`          // --expected any|exact
	Concurrency     int           `json:"concurrency,omitempty"`       // --concurrency
	Rate            float64       `json:"rate,omitempty"`              // --rate: appends/s, open loop
	Warmup          time.Duration `json:"warmup,omitempty"`            // --warmup
	Duration        time.Duration `json:"duration,omitempty"`          // --duration
	Retries         int           `json:"retries,omitempty"`           // --retries
	Variant         string        `json:"variant,omitempty"`           // --variant plain|lwt-only
	CQLConns        int           `json:"cql_conns,omitempty"`         // --cql-conns

	// Compare.
	Round  time.Duration `json:"round,omitempty"`  // --round
	Rounds int           `json:"rounds,omitempty"` // --rounds

	// Replay and state.
	Events           int    `json:"events,omitempty"`            // --events: stream length
	Stream           string `json:"stream,omitempty"`            // --stream: reuse this stream
	BuildConcurrency int    `json:"build_concurrency,omitempty"` // --build-concurrency
	RawPageSize      int    `json:"raw_page_size,omitempty"`     // --raw-page-size
	Parallel         int    `json:"parallel,omitempty"`          // --parallel: buckets read ahead
	Repeat           int    `json:"repeat,omitempty"`            // --repeat: reads per mode
	SnapshotEvery    int    `json:"snapshot_every,omitempty"`    // --snapshot-every
	FeedStreams      int    `json:"feed_streams,omitempty"`      // --feed-streams
	StateLoads       int    `json:"state_loads,omitempty"`       // --state-loads
	AcceptEncoding   string `json:"accept_encoding,omitempty"`   // --accept-encoding: "", gzip or zstd
	// CompactionWait bounds the wait for the node's compactions before the
	// reads (--compaction-wait).
	CompactionWait time.Duration `json:"compaction_wait,omitempty"`

	// Subscribe.
	Subscribers int           `json:"subscribers,omitempty"` // --subscribers
	Feed        string        `json:"feed,omitempty"`        // --feed all|category/<c>|type/<t>
	Subscriber  string        `json:"subscriber,omitempty"`  // --subscriber client|raw
	Drain       time.Duration `json:"drain,omitempty"`       // --drain: wait for stragglers
}

// scenarios lists what `go run ./bench` can run, in usage order.
var scenarios = []struct{ name, what string }{
	{"ingest", "appends through the HTTP API of a running server"},
	{"baseline", "the same rows and statements from a raw gocql writer"},
	{"compare", "ingest and baseline alternately (A B A B ...), their ratio"},
	{"replay", "build an N-event stream, read it back 4 ways, time state loads"},
	{"subscribe", "ingest while subscribers follow a feed: append-to-delivery latency"},
	{"smoke", "everything, tiny, against an in-process server (CI)"},
	{"rawreads", "what single reads of stream partitions cost Cassandra (an id lookup's, a head load's)"},
}

// defaultConfig holds the defaults every flag documents.
func defaultConfig(scenario string) Config {
	c := Config{
		Scenario:         scenario,
		URL:              "http://127.0.0.1:8080",
		CassandraHosts:   []string{"127.0.0.1"},
		Keyspace:         "eventlog",
		BaselineKeyspace: "eventlog_baseline",
		Streams:          10_000,
		Dist:             "uniform",
		ZipfS:            1.1,
		HotStreams:       1,
		HotShare:         0.9,
		EventsPerAppend:  1,
		EventSize:        200,
		Expected:         "any",
		Concurrency:      64,
		Warmup:           5 * time.Second,
		Duration:         30 * time.Second,
		Retries:          2,
		Variant:          "plain",
		CQLConns:         2,
		Round:            10 * time.Second,
		Rounds:           3,
		Events:           1_000_000,
		BuildConcurrency: 4,
		RawPageSize:      5000,
		Parallel:         4,
		Repeat:           1,
		SnapshotEvery:    10_000,
		CompactionWait:   3 * time.Minute,
		StateLoads:       20,
		Subscribers:      1,
		Subscriber:       "client",
		Feed:             "all",
		Drain:            15 * time.Second,
	}
	switch scenario {
	case "compare":
		c.Warmup = 10 * time.Second
	case "subscribe":
		// Open loop: a steady load whose appends' delivery is timed, not
		// the most the server can take.
		c.Rate = 500
	}
	return c
}

// flagSet registers the flags scenario uses on c.
func flagSet(scenario string, c *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		server   = scenario == "ingest" || scenario == "compare" || scenario == "replay" || scenario == "subscribe"
		baseline = scenario == "baseline" || scenario == "compare"
		workload = server && scenario != "replay" || baseline
	)
	if scenario == "smoke" {
		fs.StringVar(&c.Out, "out", "", "keep the result files and plots in this directory (default: a temporary one, removed)")
	} else {
		fs.StringVar(&c.Out, "out", "", "result JSON file (default bench/results/<scenario>-<time>.json); PNG plots are written beside it")
	}
	fs.BoolVar(&c.NoPlots, "no-plots", false, "write no PNG plots")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write the harness's own CPU profile to this file (what the load generator costs the shared cores)")
	fs.Func("cassandra-hosts", "comma-separated Cassandra contact points (default 127.0.0.1)", func(s string) error {
		c.CassandraHosts = splitList(s)
		return nil
	})
	fs.IntVar(&c.CassandraPID, "cassandra-pid", 0, "Cassandra's pid for CPU accounting (default: the process running CassandraDaemon)")
	if scenario != "smoke" {
		fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow --url, --spread-urls and --cassandra-hosts off this machine (default: loopback addresses only, so load never leaves it by mistake); CPU and RSS are then reported only for processes found here")
	}
	if server {
		fs.StringVar(&c.URL, "url", c.URL, "eventlog server base URL (loopback only, unless --allow-remote)")
		fs.Func("spread-urls", "comma-separated base URLs of more instances of the same keyspace: appenders are spread round robin over --url and these (ingest, compare, subscribe; the server CPU reported is theirs and --url's together, the RSS the largest of them)", func(s string) error {
			c.SpreadURLs = splitList(s)
			return nil
		})
		fs.StringVar(&c.Route, "route", "spread", "how each append picks its instance among --url and --spread-urls: spread (round robin by appender; an instance forwards what it does not own) or owner (the instance owning the stream's shard, from GET /v1/cluster, re-read every 2s, as a shard-aware client would)")
		if scenario != "replay" {
			fs.StringVar(&c.HTTPClient, "http-client", "fasthttp", "the appenders' HTTP client: fasthttp (about half net/http's CPU per request, which the load generator takes from the cores the server and Cassandra share; the gocql baseline pays no such cost) or net (Go's net/http, as the public Go client)")
		}
		fs.IntVar(&c.ServerPID, "server-pid", 0, "server pid for CPU and RSS (default: the process listening on --url's port)")
	}
	if baseline {
		fs.StringVar(&c.BaselineKeyspace, "baseline-keyspace", c.BaselineKeyspace, "keyspace of the raw-gocql baseline (created with its own journal tables)")
		fs.StringVar(&c.Variant, "variant", c.Variant, "baseline writes into its own journal tables: plain (the event rows only, one unconditional single-partition write per append: a single-writer journal, the targets' reference) or lwt-only (one conditional batch per append: the head update and the event rows)")
		fs.IntVar(&c.CQLConns, "cql-conns", c.CQLConns, "baseline connections per Cassandra host")
	}
	if workload {
		fs.IntVar(&c.Streams, "streams", c.Streams, "number of streams appended to")
		fs.StringVar(&c.Dist, "dist", c.Dist, "stream choice: uniform, zipf or hot")
		fs.Float64Var(&c.ZipfS, "zipf-s", c.ZipfS, "zipf exponent (> 1)")
		fs.IntVar(&c.HotStreams, "hot-streams", c.HotStreams, "hot: the number of hot streams")
		fs.Float64Var(&c.HotShare, "hot-share", c.HotShare, "hot: the share of appends that go to the hot streams")
		fs.IntVar(&c.EventsPerAppend, "events-per-append", c.EventsPerAppend, "events in one append (1..1000)")
		fs.IntVar(&c.EventSize, "event-size", c.EventSize, "approximate JSON bytes of one event's data + metadata: 200, 1024 or 4096")
		fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "appends in flight: closed-loop workers, or with --rate the most in flight")
		fs.Float64Var(&c.Rate, "rate", c.Rate, "open loop: appends per second, scheduled regardless of responses (0: closed loop)")
		fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "time run before measuring")
	}
	if workload && scenario != "compare" {
		fs.DurationVar(&c.Duration, "duration", c.Duration, "measured time")
	}
	if server && workload {
		fs.StringVar(&c.Expected, "expected", c.Expected, "expected_version: any, or exact (track each stream's version, retry a 409 at its current_version)")
		fs.IntVar(&c.Retries, "retries", c.Retries, "resends of an append (same ids) after outcome_unknown, unavailable or a transport error")
	}
	if scenario == "compare" {
		fs.DurationVar(&c.Round, "round", c.Round, "duration of each server and each baseline round")
		fs.IntVar(&c.Rounds, "rounds", c.Rounds, "rounds of each (A B A B ...)")
	}
	if scenario == "subscribe" {
		fs.IntVar(&c.Subscribers, "subscribers", c.Subscribers, "subscriptions following the feed, each over its own connection")
		fs.StringVar(&c.Subscriber, "subscriber", c.Subscriber, "how subscribers follow the feed: client (the public Go client's SubscribeFeed, what applications run) or raw (a bare NDJSON reader)")
		fs.StringVar(&c.Feed, "feed", c.Feed, "the feed followed: all, category/<c> (the streams appended to are put in category c) or type/<t> (one of the generated event types)")
		fs.DurationVar(&c.Drain, "drain", c.Drain, "after the last append, how long to wait for every acknowledged event to be delivered")
	}
	if scenario == "replay" {
		fs.StringVar(&c.Keyspace, "keyspace", c.Keyspace, "the server's keyspace, for the raw gocql reads")
		fs.IntVar(&c.Events, "events", c.Events, "events in the replayed stream")
		fs.StringVar(&c.Stream, "stream", "", "replay this existing stream instead of building one")
		fs.IntVar(&c.EventSize, "event-size", c.EventSize, "approximate JSON bytes of one event (200, 1024 or 4096)")
		fs.IntVar(&c.BuildConcurrency, "build-concurrency", c.BuildConcurrency, "1000-event appends in flight while building the stream")
		fs.IntVar(&c.RawPageSize, "raw-page-size", c.RawPageSize, "page size of the raw gocql reads")
		fs.IntVar(&c.Parallel, "parallel", c.Parallel, "buckets read concurrently by the bucket-parallel raw read")
		fs.IntVar(&c.Repeat, "repeat", c.Repeat, "reads of each kind, interleaved; the median is reported")
		fs.IntVar(&c.SnapshotEvery, "snapshot-every", c.SnapshotEvery, "put a snapshot every K events (0: no state loads)")
		fs.IntVar(&c.FeedStreams, "feed-streams", c.FeedStreams, "also append --events events spread over this many new streams and time a catch-up read of the all feed from its beginning (0: no feed read; use a keyspace of its own, the feed holds everything in it)")
		fs.IntVar(&c.StateLoads, "state-loads", c.StateLoads, "GET /state requests timed")
		fs.DurationVar(&c.CompactionWait, "compaction-wait", c.CompactionWait, "before the reads, wait at most this long until the node runs no compaction (what was just written is compacted for a minute or more, and the first read paid for it; 0: do not wait)")
		fs.StringVar(&c.AcceptEncoding, "accept-encoding", c.AcceptEncoding, "Accept-Encoding of the HTTP reads (ndjson, paged-json, feed-ndjson): gzip or zstd asks the server to compress, which the harness decodes (empty: plain); the bytes on the wire are noted")
	}
	return fs
}

// parseArgs parses a scenario's flags and validates the result.
func parseArgs(scenario string, args []string, out io.Writer) (Config, error) {
	if !knownScenario(scenario) {
		return Config{}, fmt.Errorf("unknown scenario %q (want %s)", scenario, scenarioNames())
	}
	c := defaultConfig(scenario)
	fs := flagSet(scenario, &c, out)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports the first setting the harness cannot run with.
func (c *Config) Validate() error {
	if !knownScenario(c.Scenario) {
		return fmt.Errorf("unknown scenario %q", c.Scenario)
	}
	if err := checkURL(c.URL, c.AllowRemote); err != nil {
		return err
	}
	for _, u := range c.SpreadURLs {
		if err := checkURL(u, c.AllowRemote); err != nil {
			return fmt.Errorf("--spread-urls: %w", err)
		}
	}
	if c.HTTPClient != "" && c.HTTPClient != "fasthttp" && c.HTTPClient != "net" {
		return fmt.Errorf("--http-client %q: want fasthttp or net", c.HTTPClient)
	}
	if c.Route != "" && c.Route != "spread" && c.Route != "owner" {
		return fmt.Errorf("--route %q: want spread or owner", c.Route)
	}
	for _, h := range c.CassandraHosts {
		if err := loopbackHost(h); err != nil && !c.AllowRemote {
			return fmt.Errorf("--cassandra-hosts: %w (--allow-remote to target it anyway)", err)
		}
	}
	switch {
	case c.AcceptEncoding != "" && c.AcceptEncoding != "gzip" && c.AcceptEncoding != "zstd":
		return fmt.Errorf("--accept-encoding %q: want gzip, zstd or nothing", c.AcceptEncoding)
	case c.Streams < 1 || c.Streams > 10_000_000:
		return errors.New("--streams must be 1..10000000")
	case c.Dist != "uniform" && c.Dist != "zipf" && c.Dist != "hot":
		return fmt.Errorf("--dist %q: want uniform, zipf or hot", c.Dist)
	case c.Dist == "zipf" && !(c.ZipfS > 1):
		return errors.New("--zipf-s must be > 1")
	case c.Dist == "hot" && (c.HotStreams < 1 || c.HotStreams > c.Streams):
		return errors.New("--hot-streams must be 1..--streams")
	case c.Dist == "hot" && (c.HotShare <= 0 || c.HotShare > 1):
		return errors.New("--hot-share must be in (0, 1]")
	case c.EventsPerAppend < 1 || c.EventsPerAppend > 1000:
		return errors.New("--events-per-append must be 1..1000")
	case !validEventSize(c.EventSize):
		return fmt.Errorf("--event-size %d: want one of %v", c.EventSize, eventSizes)
	case c.Expected != "any" && c.Expected != "exact":
		return fmt.Errorf("--expected %q: want any or exact", c.Expected)
	case c.Concurrency < 1 || c.Concurrency > 4096:
		return errors.New("--concurrency must be 1..4096")
	case c.Rate < 0 || c.Rate > 1_000_000:
		return errors.New("--rate must be 0..1000000 appends/s")
	case c.Warmup < 0 || c.Warmup > time.Hour:
		return errors.New("--warmup must be 0..1h")
	case c.Duration < 100*time.Millisecond || c.Duration > 24*time.Hour:
		return errors.New("--duration must be 100ms..24h")
	case c.Retries < 0 || c.Retries > 10:
		return errors.New("--retries must be 0..10")
	case c.Variant != "lwt-only" && c.Variant != "plain":
		return fmt.Errorf("--variant %q: want plain or lwt-only", c.Variant)
	case c.CQLConns < 1 || c.CQLConns > 64:
		return errors.New("--cql-conns must be 1..64")
	case !validKeyspace(c.Keyspace) || !validKeyspace(c.BaselineKeyspace):
		return errors.New("keyspaces must be 1-48 characters of [a-z0-9_], starting with a letter")
	case c.Scenario == "compare" && c.Keyspace == c.BaselineKeyspace:
		return errors.New("--baseline-keyspace must differ from the server's keyspace")
	case c.Round < 100*time.Millisecond || c.Round > time.Hour:
		return errors.New("--round must be 100ms..1h")
	case c.Rounds < 1 || c.Rounds > 100:
		return errors.New("--rounds must be 1..100")
	case c.Events < 1000 || c.Events > 100_000_000:
		return errors.New("--events must be 1000..100000000")
	case c.BuildConcurrency < 1 || c.BuildConcurrency > 64:
		return errors.New("--build-concurrency must be 1..64")
	case c.RawPageSize < 1 || c.RawPageSize > 100_000:
		return errors.New("--raw-page-size must be 1..100000")
	case c.Parallel < 1 || c.Parallel > 64:
		return errors.New("--parallel must be 1..64")
	case c.Repeat < 1 || c.Repeat > 20:
		return errors.New("--repeat must be 1..20")
	case c.CompactionWait < 0 || c.CompactionWait > time.Hour:
		return errors.New("--compaction-wait must be 0..1h")
	case c.SnapshotEvery < 0 || c.SnapshotEvery > 0 && c.SnapshotEvery < 100:
		return errors.New("--snapshot-every must be 0 or at least 100")
	case c.FeedStreams < 0 || c.FeedStreams > 1_000_000:
		return errors.New("--feed-streams must be 0..1000000")
	case c.StateLoads < 1 || c.StateLoads > 10_000:
		return errors.New("--state-loads must be 1..10000")
	case c.ServerPID < 0 || c.CassandraPID < 0:
		return errors.New("pids must be positive")
	case c.Subscribers < 1 || c.Subscribers > 64:
		return errors.New("--subscribers must be 1..64")
	case c.Drain < 100*time.Millisecond || c.Drain > 10*time.Minute:
		return errors.New("--drain must be 100ms..10m")
	}
	if c.Subscriber != "client" && c.Subscriber != "raw" {
		return errors.New("--subscriber must be client or raw")
	}
	if _, err := parseFeedFlag(c.Feed); err != nil {
		return err
	}
	if c.Stream != "" {
		if _, err := log.ParseStreamID(c.Stream); err != nil {
			return fmt.Errorf("--stream: %w", err)
		}
	}
	return nil
}

// checkURL accepts only http://host:port URLs, on a loopback address
// unless remote: the harness generates load, and load goes to another
// machine only when the user says so (--allow-remote).
func checkURL(s string, remote bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return fmt.Errorf("--url %q: want http://host:port", s)
	}
	if err := loopbackHost(u.Hostname()); err != nil && !remote {
		return fmt.Errorf("--url: %w (--allow-remote to target it anyway)", err)
	}
	return nil
}

func loopbackHost(h string) error {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	if h == "localhost" {
		return nil
	}
	ip := net.ParseIP(h)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.0/8, ::1, localhost)", h)
	}
	return nil
}

func knownScenario(s string) bool {
	for _, sc := range scenarios {
		if sc.name == s {
			return true
		}
	}
	return false
}

func scenarioNames() string {
	var names []string
	for _, sc := range scenarios {
		names = append(names, sc.name)
	}
	return strings.Join(names, ", ")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func validKeyspace(k string) bool {
	if len(k) == 0 || len(k) > 48 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for _, ch := range k {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '_') {
			return false
		}
	}
	return true
}
