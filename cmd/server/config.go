package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/console"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/prometheus/client_golang/prometheus"
)

// envPrefix prefixes the environment variable of every flag: --max-page-size
// falls back to EVENTLOG_MAX_PAGE_SIZE.
const envPrefix = "EVENTLOG_"

// DefaultCommitsInFlight is --commits-in-flight's default. One instance
// owns every shard, and a commit group holds about the appends in flight
// divided by the conditional writes in flight: bounding those to 2 keeps
// groups as large as on a 2-shard keyspace (docs/benchmarks.md: 9.4
// appends per commit against 3.8 with 8 shards unbounded), while the
// keyspace keeps 8 shards for consumer group members and instances.
const DefaultCommitsInFlight = 2

// errHelp: --help was asked for and printed.
var errHelp = flag.ErrHelp

// Config is the server's configuration. Each field has a flag and an
// environment variable; a flag beats the variable, which beats the default.
type Config struct {
	Listen        string   // --listen: HTTP API address
	PprofListen   string   // --pprof-listen: internal pprof address, "" (off) by default; loopback unless PprofPublic
	MetricsListen string   // --metrics-listen: a separate /metrics listener (pprof too where pprofOn), "" (off) by default
	PprofPublic   bool     // --pprof-public: serve pprof on a listener that is not a loopback address
	Auth          string   // --auth: auto, required or off
	AllowedHosts  []string // --allowed-hosts: Host header allow-list; default the loopback names on a loopback listener
	TLSCertFile   string   // --tls-cert-file: serve HTTPS with this certificate (PEM)
	TLSKeyFile    string   // --tls-key-file: and its key
	PeerTLSCAFile string   // --peer-tls-ca-file: CAs of the other instances' certificates (forwarding)

	CassandraUsername     string // --cassandra-username
	CassandraPasswordFile string // --cassandra-password-file; or EVENTLOG_CASSANDRA_PASSWORD (no flag: it would show in ps)
	CassandraPassword     string // from the file or the environment
	CassandraTLS          bool   // --cassandra-tls: encrypt with the system roots (implied by the files below)
	CassandraTLSCAFile    string // --cassandra-tls-ca-file
	CassandraTLSCertFile  string // --cassandra-tls-cert-file: client certificate (mutual TLS)
	CassandraTLSKeyFile   string // --cassandra-tls-key-file
	CassandraTLSServer    string // --cassandra-tls-server-name
	CassandraLocalDC      string // --cassandra-local-dc

	CassandraHosts    []string      // --cassandra-hosts: comma-separated contact points
	Keyspace          string        // --keyspace
	Replication       string        // --replication: used when migrate creates the keyspace
	Consistency       string        // --consistency
	SerialConsistency string        // --serial-consistency
	QueryTimeout      time.Duration // --query-timeout: every CQL query
	BucketWidth       time.Duration // --bucket-width: time window of an event partition
	BucketMaxEvents   int64         // --bucket-max-events: row cap of an event partition
	IdempotencyWindow time.Duration // --idempotency-window: how long "any" retries are recognised
	Migrate           bool          // --migrate: apply schema migrations at start-up
	Advertise         string        // --advertise: host:port other instances forward appends to
	Shards            int           // --shards: shard count recorded when migrate creates a keyspace's layout (0: 8 for a new keyspace, an existing one's otherwise)
	ShardLeaseTTL     time.Duration // --shard-lease-ttl: how long an instance holds a shard without renewing
	FillDelay         time.Duration // --fill-delay: how long committed appends may wait to be written to their streams
	CompactBlocks     bool          // --compact-blocks: rewrite streams' complete blocks of 256 events as one row
	TailBytes         int64         // --tail-bytes: committed payload a shard may hold unwritten before it writes its oldest (0: 4 MiB)
	IDsInMemory       int           // --ids-in-memory: client ids the heads of one instance hold (0: 500,000)
	MemoryLimit       int64         // --memory-limit: soft limit of the Go runtime's memory (GOMEMLIMIT wins)
	RecordTraceparent bool          // --record-traceparent: keep each append's traceparent header in its events' metadata
	DiscoveryIndex    bool          // --discovery-index: write the stream catalog and event id index behind each commit
	CommitsInFlight   int           // --commits-in-flight: conditional writes in flight over all owned shards (0: one per shard)
	GroupLeaseTTL     time.Duration // --group-lease-ttl: consumer group leases
	MaxGroups         int           // --max-groups: consumer groups per keyspace (0: 1,000)
	MaxGroupMembers   int           // --max-group-members: live members per group (0: 256)

	MaxBodyBytes       int64         // --max-body-bytes: append body, after decompression
	MaxEventsPerAppend int           // --max-events-per-append
	MaxEventBytes      int           // --max-event-bytes: data + metadata of one event
	MaxSnapshotBytes   int           // --max-snapshot-bytes: snapshot state, before compression
	MaxPageSize        int           // --max-page-size: cap of a paged read's limit
	MaxBulkLines       int           // --max-bulk-lines: lines of one bulk request, blank ones included
	MaxBulkLineBytes   int           // --max-bulk-line-bytes: one bulk line, after decompression
	MaxBulkBytes       int64         // --max-bulk-bytes: a whole bulk body, after decompression
	MaxPageBytes       int           // --max-page-bytes: a JSON page of events (stream or feed)
	MaxSubscriptions   int           // --max-subscriptions: live subscriptions on this instance
	MaxSubsPerKey      int           // --max-subscriptions-per-key: live subscriptions of one API key on this instance
	MaxLongReads       int           // --max-long-reads: NDJSON stream replays, feed reads, long state loads at once on this instance
	MaxLongReadsPerKey int           // --max-long-reads-per-key: those of one API key, and its group reads apart (0: a quarter of MaxLongReads)
	MaxGroupReads      int           // --max-group-reads: consumer group reads at once on this instance, apart from the long reads (0: MaxLongReads)
	BulkTimeout        time.Duration // --bulk-timeout: one deadline for a whole bulk request
	RateLimit          float64       // --rate-limit: requests a second of each API key without its own rate; 0: none
	RateBurst          int           // --rate-burst: requests a key may make at once; 0: its rate
	StrictPayloads     bool          // --strict-payloads: refuse duplicate keys, invalid UTF-8, lone surrogates, deep nesting in data and metadata
	MaxPayloadDepth    int           // --max-payload-depth: deepest nesting --strict-payloads allows

	ReadHeaderTimeout time.Duration // --read-header-timeout
	ReadTimeout       time.Duration // --read-timeout: a whole request (a bulk body: --bulk-timeout)
	WriteTimeout      time.Duration // --write-timeout: a response (a stream: per flush)
	IdleTimeout       time.Duration // --idle-timeout: keep-alive connections
	MaxHeaderBytes    int           // --max-header-bytes
	ShutdownTimeout   time.Duration // --shutdown-timeout: graceful shutdown budget
	SubscribePoll     time.Duration // --subscribe-poll: live subscriptions look for other instances' appends
	Heartbeat         time.Duration // --heartbeat: idle time before a subscription heartbeat

	LogLevel  string // --log-level: debug, info, warn, error
	AccessLog string // --access-log: errors or all
	LogFormat string // --log-format: json or text

	// Tracing forces OpenTelemetry tracing on (--tracing); it is also on
	// when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// is set (tracing.Enabled). The exporter reads the OTEL_* variables.
	Tracing bool

	// Console serves the web console at /ui (--console, default on).
	Console bool

	// Compress gzip- or zstd-encodes JSON and NDJSON responses for clients
	// that accept it (--compress, default on; httpapi.Config.DisableCompression).
	Compress bool
}

// DefaultConfig returns the defaults, taken from the packages that own them.
func DefaultConfig() Config {
	o := cassandra.DefaultOptions()
	h := httpapi.DefaultConfig()
	l := log.DefaultLimits()
	return Config{
		Listen:            "127.0.0.1:8080",
		Auth:              "auto",
		Console:           true,
		Compress:          true,
		DiscoveryIndex:    true,
		CassandraHosts:    o.Hosts,
		Keyspace:          o.Keyspace,
		Replication:       o.Replication,
		Consistency:       o.Consistency,
		SerialConsistency: o.SerialConsistency,
		QueryTimeout:      o.Timeout,
		BucketWidth:       o.BucketWidth,
		BucketMaxEvents:   o.BucketMaxEvents,
		IdempotencyWindow: o.IdempotencyWindow,
		ShardLeaseTTL:     5 * time.Second,
		MemoryLimit:       200 << 20,
		CommitsInFlight:   DefaultCommitsInFlight,
		CompactBlocks:     true,
		GroupLeaseTTL:     o.GroupLeaseTTL,

		MaxBodyBytes:       h.MaxBodyBytes,
		MaxEventsPerAppend: l.MaxEventsPerAppend,
		MaxEventBytes:      l.MaxEventBytes,
		MaxSnapshotBytes:   l.MaxSnapshotBytes,
		MaxPageSize:        h.MaxPageSize,
		MaxBulkLines:       h.MaxBulkLines,
		MaxBulkLineBytes:   h.MaxBulkLineBytes,
		MaxBulkBytes:       h.MaxBulkBytes,
		MaxPageBytes:       h.MaxPageBytes,
		MaxSubscriptions:   h.MaxSubscriptions,
		MaxSubsPerKey:      h.MaxSubscriptionsPerKey,
		MaxLongReads:       h.MaxLongReads,
		BulkTimeout:        h.BulkTimeout,
		MaxPayloadDepth:    h.MaxPayloadDepth,

		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ShutdownTimeout:   30 * time.Second,
		SubscribePoll:     h.SubscribePoll,
		Heartbeat:         h.Heartbeat,

		LogLevel:  "info",
		AccessLog: "errors",
		LogFormat: "json",
	}
}

// hostList is a comma-separated list flag.
type hostList struct{ hosts *[]string }

func (h hostList) String() string {
	if h.hosts == nil {
		return ""
	}
	return strings.Join(*h.hosts, ",")
}

func (h hostList) Set(s string) error {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return errors.New("at least one host is needed")
	}
	*h.hosts = out
	return nil
}

// flagSet defines every flag on fs, bound to c's fields with c's current
// values as defaults.
func (c *Config) flagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTP API listen address")
	fs.StringVar(&c.PprofListen, "pprof-listen", c.PprofListen, "internal listen address for /debug/pprof, without authentication (empty: off); refused on an address that is not loopback unless --pprof-public")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "separate listen address for /metrics, and /debug/pprof when it is a loopback address (or with --pprof-public), without authentication (empty: off; /metrics stays on --listen, admin only when authentication is on)")
	fs.BoolVar(&c.PprofPublic, "pprof-public", c.PprofPublic, "serve /debug/pprof, which needs no key and shows heap contents and goroutine stacks, on a --pprof-listen or --metrics-listen address that is not loopback")
	fs.StringVar(&c.Auth, "auth", c.Auth, "API key authentication: auto (off when every listener is a loopback address, else required), required or off (refused on a non-loopback listener); without it the admin key routes are refused (403 authentication_disabled): make keys with server keys create")
	fs.Var(allowList{&c.AllowedHosts}, "allowed-hosts", "comma-separated host names a request's Host header may carry, * for any (default: localhost,127.0.0.1,::1 on a loopback --listen, any otherwise)")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "serve HTTPS (TLS 1.2+) with this PEM certificate chain; re-read when the file changes")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", c.TLSKeyFile, "the PEM private key of --tls-cert-file")
	fs.StringVar(&c.PeerTLSCAFile, "peer-tls-ca-file", c.PeerTLSCAFile, "PEM CA bundle that signs the other instances' HTTPS certificates, which this one verifies when it forwards to them (default: the system roots plus the CA certificates in --tls-cert-file)")
	fs.Var(hostList{&c.CassandraHosts}, "cassandra-hosts", "Cassandra contact points: comma-separated `hosts` (host or host:port)")
	fs.StringVar(&c.CassandraUsername, "cassandra-username", c.CassandraUsername, "Cassandra user (PasswordAuthenticator); the password comes from --cassandra-password-file or EVENTLOG_CASSANDRA_PASSWORD")
	fs.StringVar(&c.CassandraPasswordFile, "cassandra-password-file", c.CassandraPasswordFile, "file holding the Cassandra password (a trailing newline is ignored)")
	fs.BoolVar(&c.CassandraTLS, "cassandra-tls", c.CassandraTLS, "encrypt connections to Cassandra, verifying the nodes against the system roots (implied by the other --cassandra-tls-* flags)")
	fs.StringVar(&c.CassandraTLSCAFile, "cassandra-tls-ca-file", c.CassandraTLSCAFile, "PEM CA bundle that signs the Cassandra nodes' certificates")
	fs.StringVar(&c.CassandraTLSCertFile, "cassandra-tls-cert-file", c.CassandraTLSCertFile, "PEM client certificate for Cassandra (mutual TLS)")
	fs.StringVar(&c.CassandraTLSKeyFile, "cassandra-tls-key-file", c.CassandraTLSKeyFile, "PEM key of --cassandra-tls-cert-file")
	fs.StringVar(&c.CassandraTLSServer, "cassandra-tls-server-name", c.CassandraTLSServer, "name the Cassandra nodes' certificates must carry (default: the host dialled)")
	fs.StringVar(&c.CassandraLocalDC, "cassandra-local-dc", c.CassandraLocalDC, "route queries to this data centre's nodes first (DC-aware under token-aware)")
	fs.StringVar(&c.Keyspace, "keyspace", c.Keyspace, "Cassandra keyspace")
	fs.StringVar(&c.Replication, "replication", c.Replication, "keyspace replication when migrate creates it: SimpleStrategy:<rf> or NetworkTopologyStrategy:<dc>=<rf>[,...]")
	fs.StringVar(&c.Consistency, "consistency", c.Consistency, "consistency of reads and writes: QUORUM, LOCAL_QUORUM, EACH_QUORUM or ALL (less than a quorum is refused)")
	fs.StringVar(&c.SerialConsistency, "serial-consistency", c.SerialConsistency, "serial consistency of conditional writes: LOCAL_SERIAL or SERIAL")
	fs.DurationVar(&c.QueryTimeout, "query-timeout", c.QueryTimeout, "timeout of every CQL query (at least 100ms)")
	fs.DurationVar(&c.BucketWidth, "bucket-width", c.BucketWidth, "time window of one event partition (Go duration, at least 1s)")
	fs.Int64Var(&c.BucketMaxEvents, "bucket-max-events", c.BucketMaxEvents, "row cap of one event partition (--max-events-per-append..1000000)")
	fs.DurationVar(&c.IdempotencyWindow, "idempotency-window", c.IdempotencyWindow, `how long retries of "any" appends are recognised (at least 1m)`)
	fs.BoolVar(&c.Migrate, "migrate", c.Migrate, "apply schema migrations at start-up")
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, "host:port other instances reach this one at, to forward appends for the shards it owns (default: the listen address)")
	fs.IntVar(&c.Shards, "shards", c.Shards, "shard count recorded when migrate creates the keyspace's layout, fixed afterwards: the most consumer group members that share a feed, and the most instances that commit; 0: 8 for a new keyspace (room for both while --commits-in-flight keeps one instance's commit groups large), and whatever an existing one has; another count than an existing keyspace's is refused")
	fs.IntVar(&c.CommitsInFlight, "commits-in-flight", c.CommitsInFlight, "conditional writes this instance has in flight over all the shards it owns (0: one per shard); a group holds about the appends in flight divided by this, so 2 keeps one instance's groups as large as 2 shards would, however many it owns")
	fs.Int64Var(&c.MemoryLimit, "memory-limit", c.MemoryLimit, "soft limit in bytes of the memory the Go runtime holds (heap, stacks); near it the garbage collector runs more often instead of letting the heap grow (0: none; GOMEMLIMIT, when set, wins)")
	fs.BoolVar(&c.CompactBlocks, "compact-blocks", c.CompactBlocks, "rewrite each stream's complete blocks of 256 events as one row behind the fill, so that replays read a row per block rather than one per append")
	fs.DurationVar(&c.FillDelay, "fill-delay", c.FillDelay, "how long a committed append may wait before it is written to its stream's partitions, so that a stream's appends share writes (a read of the stream writes it at once; 0: no wait)")
	fs.IntVar(&c.IDsInMemory, "ids-in-memory", c.IDsInMemory, "client ids the stream heads of this instance keep in memory to recognise an \"any\" retry without reading Cassandra (about 50 bytes each), and beside them Bloom filters of up to 80 bytes × this, at least 1 MiB a shard (2-3 bytes an id), and of streams' first 1,024 ids up to 32 bytes × this, at least 1 MiB a shard; an append with client ids to a stream whose ids are in neither reads them from Cassandra (0: 500,000)")
	fs.Int64Var(&c.TailBytes, "tail-bytes", c.TailBytes, "committed event bytes a shard may hold unwritten to its streams: past it the oldest are written at once whatever --fill-delay says, past twice it commits wait (0: 4 MiB); the tail is held in memory")
	fs.DurationVar(&c.ShardLeaseTTL, "shard-lease-ttl", c.ShardLeaseTTL, "how long an instance holds a shard without renewing: bounds how soon a crashed instance's shards move (at least 1s)")
	fs.DurationVar(&c.GroupLeaseTTL, "group-lease-ttl", c.GroupLeaseTTL, "how long a consumer group member holds its partitions after a heartbeat; handlers must finish within it (100ms..1h)")
	fs.IntVar(&c.MaxGroups, "max-groups", c.MaxGroups, "the most consumer groups a keyspace may have (0: 1,000); a join that would create another is refused with 409 too_many_groups")
	fs.IntVar(&c.MaxGroupMembers, "max-group-members", c.MaxGroupMembers, "the most live members a group may have (0: 256); a join of another is refused with 409 too_many_members")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest append body, after decompression")
	fs.IntVar(&c.MaxEventsPerAppend, "max-events-per-append", c.MaxEventsPerAppend, "most events in one append")
	fs.IntVar(&c.MaxEventBytes, "max-event-bytes", c.MaxEventBytes, "largest event (data + metadata)")
	fs.IntVar(&c.MaxSnapshotBytes, "max-snapshot-bytes", c.MaxSnapshotBytes, "largest snapshot state, before compression")
	fs.IntVar(&c.MaxPageSize, "max-page-size", c.MaxPageSize, "cap of the limit of a stream's page and of a consumer group read (a feed page's limit is 1-10000 whatever this says)")
	fs.IntVar(&c.MaxBulkLines, "max-bulk-lines", c.MaxBulkLines, "most lines in one bulk request, blank ones included")
	fs.IntVar(&c.MaxBulkLineBytes, "max-bulk-line-bytes", c.MaxBulkLineBytes, "longest bulk line, after decompression")
	fs.Int64Var(&c.MaxBulkBytes, "max-bulk-bytes", c.MaxBulkBytes, "largest bulk request body, after decompression")
	fs.DurationVar(&c.BulkTimeout, "bulk-timeout", c.BulkTimeout, "one deadline for a whole bulk request: reading its body and appending its lines")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests a second of each API key that has no rate of its own (keys create --key-rate-limit); 0: no limit; beyond it 429 rate_limited")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "requests an API key may make at once (token bucket size); 0: its rate")
	fs.BoolVar(&c.StrictPayloads, "strict-payloads", c.StrictPayloads, "refuse events whose data or metadata repeat a key in an object, hold invalid UTF-8 or lone surrogates, or nest deeper than --max-payload-depth (400 invalid_event)")
	fs.IntVar(&c.MaxPayloadDepth, "max-payload-depth", c.MaxPayloadDepth, "deepest nesting of arrays and objects in an event's data or metadata that --strict-payloads allows")
	fs.IntVar(&c.MaxPageBytes, "max-page-bytes", c.MaxPageBytes, "a page of events (stream, feed or consumer group read; each page behind an NDJSON feed read or subscription) ends early, with its next, past this many bytes; on the shards write path the store stops reading there too")
	fs.IntVar(&c.MaxSubscriptions, "max-subscriptions", c.MaxSubscriptions, "most live subscriptions (stream and feed) on this instance; more are 429")
	fs.IntVar(&c.MaxSubsPerKey, "max-subscriptions-per-key", c.MaxSubsPerKey, "most live subscriptions of one API key on this instance (authentication on); more are 429")
	fs.IntVar(&c.MaxLongReads, "max-long-reads", c.MaxLongReads, "most long reads (NDJSON stream replays, feed reads, state loads of more than --max-page-size events) served at once on this instance, each holding up to about 2 × --max-page-bytes; more are 429 too_many_long_reads")
	fs.IntVar(&c.MaxLongReadsPerKey, "max-long-reads-per-key", c.MaxLongReadsPerKey, "most long reads of one API key on this instance (authentication on), and apart from them most consumer group reads; 0: a quarter of --max-long-reads; more are 429 too_many_long_reads")
	fs.IntVar(&c.MaxGroupReads, "max-group-reads", c.MaxGroupReads, "most consumer group reads served at once on this instance, counted apart from --max-long-reads so that replays never make group members wait, each holding a page (up to about 2 × --max-page-bytes); 0: as many as --max-long-reads; more are 429 too_many_long_reads")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "time to read request headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "time to read a request (bulk bodies: --bulk-timeout)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "time to write a response (streams: each flush); keep it above the append time")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "keep-alive connection idle time")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "largest request header block")
	fs.DurationVar(&c.SubscribePoll, "subscribe-poll", c.SubscribePoll, "how often live subscriptions look for events appended through other instances (at least 100ms)")
	fs.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, "idle time after which a live subscription sends a heartbeat (at least 100ms)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time allowed for in-flight requests at shutdown")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.AccessLog, "access-log", c.AccessLog, "requests logged at info level: errors (answers of 400 and above, and aborted ones) or all; the others at debug")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: json or text")
	fs.BoolVar(&c.Tracing, "tracing", c.Tracing, "export OpenTelemetry traces over OTLP/HTTP, configured by the OTEL_* variables (default: on when OTEL_EXPORTER_OTLP_ENDPOINT is set)")
	fs.BoolVar(&c.RecordTraceparent, "record-traceparent", c.RecordTraceparent, "record each append's W3C traceparent header in the metadata (\"traceparent\") of its events that carry none, so consumers can continue the trace")
	fs.BoolVar(&c.DiscoveryIndex, "discovery-index", c.DiscoveryIndex, "shards write path: write the stream catalog and the event id index behind each commit (GET /v1/streams, /v1/categories, /v1/events/{id}); off saves their writes, and those routes then show only what was indexed while it was on")
	fs.BoolVar(&c.Console, "console", c.Console, "serve the web console at /ui (its files without authentication; it asks for a token when the API needs one)")
	fs.BoolVar(&c.Compress, "compress", c.Compress, "gzip- or zstd-encode JSON and NDJSON responses of 1 KiB and more (bulk results from their first line) when the request's Accept-Encoding allows (live subscriptions are always sent plain)")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	return fs
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ParseFlags fills c from args and the environment (getenv): a flag given
// in args wins over its environment variable, which wins over the value c
// already holds. It rejects positional arguments.
func (c *Config) ParseFlags(name string, args []string, getenv func(string) string, out io.Writer) error {
	_, err := c.parse(name, args, getenv, out, nil, "", 0)
	return err
}

// parse is ParseFlags with command flags of its own (extra, defined on the
// same set) and up to maxArgs positional arguments, which it returns.
// With extraEnv, each extra flag falls back to its variable too, named
// with extraEnv after the prefix (EVENTLOG_VERIFY_RATE for verify's
// --rate), so that a command's own flag is not read from a variable that
// reads as a serve setting; without it (keys), extra flags have none.
func (c *Config) parse(name string, args []string, getenv func(string) string, out io.Writer, extra func(*flag.FlagSet), extraEnv string, maxArgs int) ([]string, error) {
	fs := c.flagSet(name, out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s [serve|migrate|keys|verify|version] [flags]\n\n", "server")
		fmt.Fprintln(out, "  serve    run the HTTP API (the default)")
		fmt.Fprintln(out, "  migrate  create the keyspace and apply schema migrations, then exit")
		fmt.Fprintln(out, "  keys     create, list or revoke API keys: keys create --name NAME --scope SCOPE [--scope ...] [--expires DURATION]")
		fmt.Fprintln(out, "           [--key-rate-limit N],")
		fmt.Fprintln(out, "           keys list, keys revoke NAME (talks to Cassandra directly, with the flags below; the way to")
		fmt.Fprintln(out, "           make the first key, and all of them for servers without authentication, whose admin routes refuse)")
		fmt.Fprintln(out, "  verify   read and check every shard log record (with --streams every stream row, with --snapshots every")
		fmt.Fprintln(out, "           snapshot too) and print each corrupt row's key; never writes, but with --repair. [--streams]")
		fmt.Fprintln(out, "           [--snapshots] [--repair] [--concurrency N] [--rate ROWS_PER_S] [--format text|json];")
		fmt.Fprintln(out, "           --repair (with --streams) writes each corrupt chunk or run row again from the committed shard")
		fmt.Fprintln(out, "           log records it was filled from, and says repaired, unrepairable, skipped or failed, and why;")
		fmt.Fprintln(out, "           exit 0: none found (or all repaired), 3: corrupt rows found (and left), 1: could not read")
		fmt.Fprintln(out, "           everything (or a repair failed)")
		fmt.Fprintln(out, "  version  print the version")
		fmt.Fprintln(out, "\nEvery flag falls back to its environment variable; a flag given on the command line wins.")
		fmt.Fprintln(out, "verify's own flags have theirs under EVENTLOG_VERIFY_ (--rate: EVENTLOG_VERIFY_RATE); keys' own have none.")
		fmt.Fprintln(out, "0 is refused, not taken for the default, by every flag whose help gives 0 no meaning of its own.")
		fmt.Fprintln(out, "EVENTLOG_CASSANDRA_PASSWORD holds the Cassandra password when --cassandra-password-file is not given.\n\nFlags:")
		fs.PrintDefaults()
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if extra != nil {
		common := map[string]bool{}
		fs.VisitAll(func(f *flag.Flag) { common[f.Name] = true })
		extra(fs)
		if extraEnv != "" {
			fs.VisitAll(func(f *flag.Flag) {
				if common[f.Name] {
					return
				}
				name := envName(extraEnv + f.Name)
				f.Usage += " (env " + name + ")"
				if v := getenv(name); v != "" && envErr == nil {
					if err := fs.Set(f.Name, v); err != nil {
						envErr = fmt.Errorf("%s=%q: %w", name, v, err)
					}
				}
			})
		}
	}
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > maxArgs {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(maxArgs))
	}
	if err := c.readPassword(getenv); err != nil {
		return nil, err
	}
	return fs.Args(), c.Validate()
}

// readPassword sets CassandraPassword from --cassandra-password-file, else
// from EVENTLOG_CASSANDRA_PASSWORD.
func (c *Config) readPassword(getenv func(string) string) error {
	c.CassandraPassword = getenv(envPrefix + "CASSANDRA_PASSWORD")
	if c.CassandraPasswordFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.CassandraPasswordFile)
	if err != nil {
		return fmt.Errorf("cassandra password file: %w", err)
	}
	c.CassandraPassword = strings.TrimRight(string(b), "\r\n")
	return nil
}

// Validate checks what the packages' own validation does not.
func (c *Config) Validate() error {
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return fmt.Errorf("log format %q: want json or text", c.LogFormat)
	}
	if c.MaxGroups < 0 || c.MaxGroupMembers < 0 {
		return errors.New("--max-groups and --max-group-members must not be negative")
	}
	if c.MemoryLimit < 0 {
		return errors.New("--memory-limit must not be negative")
	}
	if c.FillDelay < 0 || c.CommitsInFlight < 0 || c.TailBytes < 0 || c.IDsInMemory < 0 {
		return errors.New("--fill-delay, --tail-bytes, --ids-in-memory and --commits-in-flight must not be negative")
	}
	if c.Shards < 0 || c.Shards > partition.MaxShards {
		return fmt.Errorf("--shards %d: want 1..%d (0: %d for a new keyspace, an existing one's otherwise)", c.Shards, partition.MaxShards, partition.DefaultShards)
	}
	if c.TailBytes > 1<<30 {
		return errors.New("--tail-bytes must be at most 1 GiB (it is held in memory, per shard)")
	}
	if c.Listen == "" {
		return errors.New("listen address is empty")
	}
	// No 0 for "none": the http.Server would take it so, but the API's
	// streams would still extend their write deadline by httpapi's default
	// at each flush, and forwards to other instances would wait for good.
	if c.ReadTimeout <= 0 {
		return fmt.Errorf("--read-timeout %s: must be positive", c.ReadTimeout)
	}
	if c.WriteTimeout <= 0 {
		return fmt.Errorf("--write-timeout %s: must be positive", c.WriteTimeout)
	}
	if err := c.checkPeriods(); err != nil {
		return err
	}
	if err := c.checkMinimums(); err != nil {
		return err
	}
	if _, err := c.authRequired(); err != nil {
		return err
	}
	if c.PprofListen != "" && !c.pprofOn(c.PprofListen) {
		return fmt.Errorf("--pprof-listen on %s, which is not a loopback address: pprof needs no key and shows heap contents and goroutine stacks to anyone who reaches it (listen on 127.0.0.1, or pass --pprof-public)", c.PprofListen)
	}
	if err := checkAdvertise(c.Advertise); err != nil {
		return err
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if c.CassandraPassword != "" && c.CassandraUsername == "" {
		return errors.New("a Cassandra password without --cassandra-username")
	}
	o := c.cassandraOptions(nil, nil)
	if err := o.Validate(); err != nil {
		return err
	}
	h := c.httpConfig(nil, nil)
	return h.Validate()
}

// Lower bounds of the settings that set how often the server works on
// its own: below them an instance floods Cassandra or its clients rather
// than serving (a 1ms --shard-lease-ttl renews every shard with a
// conditional write every 250µs; a 1ms --subscribe-poll reads Cassandra
// every millisecond for each stream watched).
const (
	minShardLeaseTTL = time.Second
	minSubscribePoll = 100 * time.Millisecond
	minHeartbeat     = 100 * time.Millisecond
	minQueryTimeout  = 100 * time.Millisecond
)

// checkPeriods refuses the periods below their lower bounds (0 included:
// the flags' defaults are the packages' defaults, given explicitly).
func (c *Config) checkPeriods() error {
	for _, p := range []struct {
		flag     string
		got, min time.Duration
		why      string
	}{
		{"--shard-lease-ttl", c.ShardLeaseTTL, minShardLeaseTTL, "each instance renews its shards with conditional writes four times per TTL"},
		{"--subscribe-poll", c.SubscribePoll, minSubscribePoll, "each watched stream or feed is read from Cassandra once per poll"},
		{"--heartbeat", c.Heartbeat, minHeartbeat, "each idle live subscription is written to once per heartbeat"},
		{"--query-timeout", c.QueryTimeout, minQueryTimeout, "queries that time out are retried"},
	} {
		if p.got < p.min {
			return fmt.Errorf("%s %v: must be at least %v (%s)", p.flag, p.got, p.min, p.why)
		}
	}
	return nil
}

// checkMinimums refuses the settings below their minimum, 0 included,
// naming the flag. httpapi.Config and cassandra.Options take a zero field
// for their default (programmatic callers leave fields out), so a 0 given
// to one of these flags would otherwise mean the default without a word
// (--idempotency-window 0 would recognise retries for 24h). The flags whose
// 0 means something of its own are not here: --shards, --fill-delay,
// --tail-bytes, --ids-in-memory, --commits-in-flight, --memory-limit,
// --max-groups, --max-group-members, --max-long-reads-per-key,
// --max-group-reads, --rate-limit and --rate-burst (README, Configuration).
// --read-header-timeout, --idle-timeout and --max-header-bytes are here
// too: Go's http.Server would take their 0 for the read timeout (none on
// the --metrics-listen listener, which has no read timeout) and 1 MB.
func (c *Config) checkMinimums() error {
	def := DefaultConfig()
	for _, p := range []struct {
		flag     string
		got, min time.Duration
		def      time.Duration
	}{
		{"--bucket-width", c.BucketWidth, time.Second, def.BucketWidth},
		{"--idempotency-window", c.IdempotencyWindow, time.Minute, def.IdempotencyWindow},
		{"--group-lease-ttl", c.GroupLeaseTTL, 100 * time.Millisecond, def.GroupLeaseTTL},
		{"--bulk-timeout", c.BulkTimeout, time.Nanosecond, def.BulkTimeout},
		{"--read-header-timeout", c.ReadHeaderTimeout, time.Nanosecond, def.ReadHeaderTimeout},
		{"--idle-timeout", c.IdleTimeout, time.Nanosecond, def.IdleTimeout},
		{"--shutdown-timeout", c.ShutdownTimeout, time.Nanosecond, def.ShutdownTimeout},
	} {
		if p.got >= p.min {
			continue
		}
		want := "at least " + p.min.String()
		if p.min == time.Nanosecond {
			want = "above 0"
		}
		return fmt.Errorf("%s %v: must be %s%s", p.flag, p.got, want, zeroNote(p.got == 0, p.def))
	}
	for _, p := range []struct {
		flag     string
		got, min int64
		def      int64
	}{
		{"--bucket-max-events", c.BucketMaxEvents, max(1, int64(c.MaxEventsPerAppend)), def.BucketMaxEvents},
		{"--max-body-bytes", c.MaxBodyBytes, 1, def.MaxBodyBytes},
		{"--max-events-per-append", int64(c.MaxEventsPerAppend), 1, int64(def.MaxEventsPerAppend)},
		{"--max-event-bytes", int64(c.MaxEventBytes), 1, int64(def.MaxEventBytes)},
		{"--max-snapshot-bytes", int64(c.MaxSnapshotBytes), 1, int64(def.MaxSnapshotBytes)},
		{"--max-page-size", int64(c.MaxPageSize), 1, int64(def.MaxPageSize)},
		{"--max-page-bytes", int64(c.MaxPageBytes), 1, int64(def.MaxPageBytes)},
		{"--max-bulk-lines", int64(c.MaxBulkLines), 1, int64(def.MaxBulkLines)},
		{"--max-bulk-line-bytes", int64(c.MaxBulkLineBytes), 1, int64(def.MaxBulkLineBytes)},
		{"--max-bulk-bytes", c.MaxBulkBytes, 1, def.MaxBulkBytes},
		{"--max-subscriptions", int64(c.MaxSubscriptions), 1, int64(def.MaxSubscriptions)},
		{"--max-subscriptions-per-key", int64(c.MaxSubsPerKey), 1, int64(def.MaxSubsPerKey)},
		{"--max-long-reads", int64(c.MaxLongReads), 1, int64(def.MaxLongReads)},
		{"--max-payload-depth", int64(c.MaxPayloadDepth), 1, int64(def.MaxPayloadDepth)},
		{"--max-header-bytes", int64(c.MaxHeaderBytes), 1, int64(def.MaxHeaderBytes)},
	} {
		if p.got < p.min {
			return fmt.Errorf("%s %d: must be at least %d%s", p.flag, p.got, p.min, zeroNote(p.got == 0, p.def))
		}
	}
	return nil
}

// zeroNote tells an operator who gave 0 for a default how to get it.
func zeroNote(zero bool, def any) string {
	if !zero {
		return ""
	}
	return fmt.Sprintf(" (0 does not mean the default: leave the flag out for %v)", def)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func (c *Config) limits() log.Limits {
	return log.Limits{MaxEventsPerAppend: c.MaxEventsPerAppend, MaxEventBytes: c.MaxEventBytes, MaxSnapshotBytes: c.MaxSnapshotBytes}
}

// cassandraOptions are the store options c describes.
func (c *Config) cassandraOptions(logger *slog.Logger, reg prometheus.Registerer) cassandra.Options {
	o := cassandra.Options{
		Hosts:             c.CassandraHosts,
		Keyspace:          c.Keyspace,
		Replication:       c.Replication,
		Consistency:       c.Consistency,
		SerialConsistency: c.SerialConsistency,
		Timeout:           c.QueryTimeout,
		BucketWidth:       c.BucketWidth,
		BucketMaxEvents:   c.BucketMaxEvents,
		IdempotencyWindow: c.IdempotencyWindow,
		Shards:            c.Shards,
		GroupLeaseTTL:     c.GroupLeaseTTL,
		Limits:            c.limits(),
		Logger:            logger,
		Registerer:        reg,
		Username:          c.CassandraUsername,
		Password:          c.CassandraPassword,
		LocalDC:           c.CassandraLocalDC,
	}
	if c.CassandraTLS || c.CassandraTLSCAFile != "" || c.CassandraTLSCertFile != "" || c.CassandraTLSServer != "" {
		o.TLS = &cassandra.TLSOptions{CAFile: c.CassandraTLSCAFile, CertFile: c.CassandraTLSCertFile,
			KeyFile: c.CassandraTLSKeyFile, ServerName: c.CassandraTLSServer}
	}
	o.EnsureDefaults()
	return o
}

// authRequired resolves --auth: auto requires keys unless every listener
// is a loopback address; off is refused on any other listener.
func (c *Config) authRequired() (bool, error) {
	public := ""
	for _, l := range []string{c.Listen, c.MetricsListen, c.PprofListen} {
		if l != "" && !isLoopback(l) {
			public = l
			break
		}
	}
	switch c.Auth {
	case "required":
		return true, nil
	case "auto":
		return public != "", nil
	case "off":
		if public != "" {
			return false, fmt.Errorf("--auth=off on %s, which is not a loopback address: anyone who reaches it could read and write every stream (use --auth=required, or listen on 127.0.0.1)", public)
		}
		return false, nil
	}
	return false, fmt.Errorf("auth %q: want auto, required or off", c.Auth)
}

// isLoopback reports whether a listen address is on a loopback interface
// only (an empty host, like ":8080", is every interface).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// pprofOn reports whether a listener at listen may serve pprof: on a
// loopback address, or anywhere with --pprof-public. Profiles hold heap
// contents (events, tokens in flight) and goroutine stacks, and a CPU
// profile or trace costs the server while it runs: served without a key,
// they stay on the host unless the operator says otherwise.
func (c *Config) pprofOn(listen string) bool { return c.PprofPublic || isLoopback(listen) }

// checkAdvertise refuses an --advertise the other instances could not
// forward to: not host:port (a scheme, which the server adds itself, or
// no port), or a wildcard host, which would name each one's own host.
func checkAdvertise(a string) error {
	if a == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || strings.Contains(a, "/") {
		return fmt.Errorf("--advertise %q: want host:port, without a scheme (https:// is implied by --tls-cert-file)", a)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("--advertise %q: a wildcard host names every instance's own host; give the address the others reach this one at", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("--advertise %q: port must be 1..65535", a)
	}
	return nil
}

// advertiseWarning is what to tell an operator whose instance listens on
// a wildcard address without --advertise: that address is what the other
// instances would forward appends to, and there it names their own host.
// One instance alone forwards nothing, so this is a warning, not an error.
func (c *Config) advertiseWarning() string {
	if c.Advertise != "" {
		return ""
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return ""
	}
	return fmt.Sprintf("--listen %s is a wildcard address and --advertise is not set: other instances of the keyspace would forward appends to %s, their own host; set --advertise host:port before starting a second instance", c.Listen, c.Listen)
}

// allowedHosts resolves --allowed-hosts for --listen (allowedHostsFor).
func (c *Config) allowedHosts() []string { return c.allowedHostsFor(c.Listen) }

// allowedHostsFor resolves --allowed-hosts for a listener at listen: nil
// (any host) for "*" or a listener that is not loopback, the loopback
// names by default on a loopback listener. The metrics and pprof
// listeners take the same list.
func (c *Config) allowedHostsFor(listen string) []string {
	switch {
	case len(c.AllowedHosts) == 1 && c.AllowedHosts[0] == "*":
		return nil
	case len(c.AllowedHosts) > 0:
		return c.AllowedHosts
	case isLoopback(listen):
		return []string{"localhost", "127.0.0.1", "::1"}
	}
	return nil
}

// allowList is a comma-separated list flag that may be "*".
type allowList struct{ list *[]string }

func (a allowList) String() string {
	if a.list == nil {
		return ""
	}
	return strings.Join(*a.list, ",")
}

func (a allowList) Set(s string) error {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return errors.New("at least one host name, or *")
	}
	*a.list = out
	return nil
}

// httpConfig is the HTTP layer's configuration. Streams extend their
// deadlines by the server's read and write timeouts; an append may take
// about three query timeouts (head read, conditional write, retry), capped
// below the write timeout so its answer can still be sent.
func (c *Config) httpConfig(logger *slog.Logger, reg *prometheus.Registry) httpapi.Config {
	h := httpapi.Config{
		AccessLog:              c.AccessLog,
		Limits:                 c.limits(),
		MaxBodyBytes:           c.MaxBodyBytes,
		MaxPageSize:            c.MaxPageSize,
		MaxBulkLines:           c.MaxBulkLines,
		MaxBulkLineBytes:       c.MaxBulkLineBytes,
		MaxBulkBytes:           c.MaxBulkBytes,
		MaxPageBytes:           c.MaxPageBytes,
		BulkTimeout:            c.BulkTimeout,
		MaxSubscriptions:       c.MaxSubscriptions,
		MaxSubscriptionsPerKey: c.MaxSubsPerKey,
		MaxLongReads:           c.MaxLongReads,
		MaxLongReadsPerKey:     c.MaxLongReadsPerKey,
		MaxGroupReads:          c.MaxGroupReads,
		RateLimit:              c.RateLimit,
		RateBurst:              c.RateBurst,
		StrictPayloads:         c.StrictPayloads,
		MaxPayloadDepth:        c.MaxPayloadDepth,
		WriteTimeout:           c.WriteTimeout,
		ReadTimeout:            c.ReadTimeout,
		AppendTimeout:          3 * c.QueryTimeout,
		SubscribePoll:          c.SubscribePoll,
		Heartbeat:              c.Heartbeat,
		Logger:                 logger,
		Registry:               reg,
	}
	if c.WriteTimeout > 0 && h.AppendTimeout > c.WriteTimeout*9/10 {
		h.AppendTimeout = c.WriteTimeout * 9 / 10
	}
	if h.DefaultPageSize = 100; h.DefaultPageSize > h.MaxPageSize {
		h.DefaultPageSize = h.MaxPageSize
	}
	if c.Console {
		h.Console = console.NewHandler()
	}
	h.RecordTraceparent = c.RecordTraceparent
	h.DisableCompression = !c.Compress
	h.EnsureDefaults()
	return h
}
