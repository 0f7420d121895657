package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseFlags(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		c := DefaultConfig()
		if err := c.ParseFlags("server", nil, env(nil), io.Discard); err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]any{
			"listen": c.Listen, "hosts": c.CassandraHosts, "keyspace": c.Keyspace, "replication": c.Replication,
			"consistency": c.Consistency, "bucket width": c.BucketWidth, "bucket max events": c.BucketMaxEvents,
			"migrate": c.Migrate, "pprof": c.PprofListen,
		} {
			want := map[string]any{
				"listen": "127.0.0.1:8080", "hosts": []string{"127.0.0.1"}, "keyspace": "eventlog", "replication": "SimpleStrategy:1",
				"consistency": "LOCAL_QUORUM", "bucket width": 24 * time.Hour, "bucket max events": int64(50000),
				"migrate": false, "pprof": "",
			}[name]
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
	})
	t.Run("EnvOverridesDefault", func(t *testing.T) {
		c := DefaultConfig()
		err := c.ParseFlags("server", nil, env(map[string]string{
			"EVENTLOG_LISTEN":            "0.0.0.0:9000",
			"EVENTLOG_CASSANDRA_HOSTS":   "a, b:9043 ,c",
			"EVENTLOG_BUCKET_WIDTH":      "1h30m",
			"EVENTLOG_BUCKET_MAX_EVENTS": "2000",
			"EVENTLOG_MIGRATE":           "true",
			"EVENTLOG_CONSISTENCY":       "QUORUM",
		}), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.Listen != "0.0.0.0:9000" || !reflect.DeepEqual(c.CassandraHosts, []string{"a", "b:9043", "c"}) ||
			c.BucketWidth != 90*time.Minute || c.BucketMaxEvents != 2000 || !c.Migrate || c.Consistency != "QUORUM" {
			t.Fatalf("got %+v", c)
		}
	})
	t.Run("FlagOverridesEnv", func(t *testing.T) {
		c := DefaultConfig()
		err := c.ParseFlags("server", []string{"--listen", "127.0.0.1:0", "--keyspace=flagks", "--migrate=false", "--cassandra-hosts=x"},
			env(map[string]string{"EVENTLOG_LISTEN": "0.0.0.0:9000", "EVENTLOG_KEYSPACE": "envks", "EVENTLOG_MIGRATE": "true",
				"EVENTLOG_CASSANDRA_HOSTS": "y", "EVENTLOG_MAX_PAGE_SIZE": "50"}), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.Listen != "127.0.0.1:0" || c.Keyspace != "flagks" || c.Migrate || !reflect.DeepEqual(c.CassandraHosts, []string{"x"}) {
			t.Fatalf("flags did not win: %+v", c)
		}
		if c.MaxPageSize != 50 {
			t.Fatalf("env without a flag: max page size = %d, want 50", c.MaxPageSize)
		}
	})
	t.Run("PeriodsAtTheirLowerBounds", func(t *testing.T) {
		c := DefaultConfig()
		args := []string{"--shard-lease-ttl=1s", "--subscribe-poll=100ms", "--heartbeat=100ms", "--query-timeout=100ms"}
		if err := c.ParseFlags("server", args, env(nil), io.Discard); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AdvertiseForms", func(t *testing.T) {
		for _, a := range []string{"server:8080", "10.0.0.7:8080", "[fd00::7]:8080", "eventlog-0.eventlog.default.svc:8443"} {
			c := DefaultConfig()
			if err := c.ParseFlags("server", []string{"--advertise=" + a}, env(nil), io.Discard); err != nil {
				t.Errorf("--advertise=%s: %v", a, err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"ErrBadEnvDuration", nil, map[string]string{"EVENTLOG_BUCKET_WIDTH": "daily"}, "EVENTLOG_BUCKET_WIDTH"},
		{"ErrBadFlag", []string{"--bucket-max-events=lots"}, nil, "bucket-max-events"},
		{"ErrUnknownFlag", []string{"--nope"}, nil, "nope"},
		{"ErrPositional", []string{"extra"}, nil, "extra"},
		{"ErrLogFormat", []string{"--log-format=xml"}, nil, "log format"},
		{"ErrLogLevel", []string{"--log-level=loud"}, nil, "log level"},
		{"ErrConsistency", []string{"--consistency=SOMETIMES"}, nil, "SOMETIMES"},
		{"ErrReplication", []string{"--replication=Simple"}, nil, "replication"},
		{"ErrKeyspace", []string{"--keyspace=Bad-Name"}, nil, "keyspace"},
		{"ErrEmptyHosts", []string{"--cassandra-hosts=,"}, nil, "host"},
		{"ErrNegativeTailBytes", []string{"--tail-bytes=-1"}, nil, "--tail-bytes"},
		{"ErrHugeTailBytes", nil, map[string]string{"EVENTLOG_TAIL_BYTES": "2147483648"}, "--tail-bytes"},
		{"ErrNegativeShards", []string{"--shards=-1"}, nil, "--shards"},
		{"ErrAdvertiseScheme", []string{"--advertise=http://a.example:8080"}, nil, "--advertise"},
		{"ErrAdvertiseNoPort", nil, map[string]string{"EVENTLOG_ADVERTISE": "a.example"}, "--advertise"},
		{"ErrAdvertiseWildcard", []string{"--advertise=0.0.0.0:8080"}, nil, "--advertise"},
		{"ErrAdvertiseNoHost", []string{"--advertise=:8080"}, nil, "--advertise"},
		{"ErrAdvertisePort", []string{"--advertise=a.example:0"}, nil, "--advertise"},
		{"ErrNegativeSubscribePoll", []string{"--subscribe-poll=-1s"}, nil, "--subscribe-poll"},
		{"ErrNegativeHeartbeat", nil, map[string]string{"EVENTLOG_HEARTBEAT": "-5s"}, "heartbeat"},
		{"ErrNegativeLeaseTTL", []string{"--shard-lease-ttl=-1s"}, nil, "--shard-lease-ttl"},
		{"ErrNegativeIdleTimeout", []string{"--idle-timeout=-1s"}, nil, "--idle-timeout"},
		{"ErrNegativeHeaderTimeout", []string{"--read-header-timeout=-1s"}, nil, "--read-header-timeout"},
		{"ErrNegativeHeaderBytes", []string{"--max-header-bytes=-1"}, nil, "--max-header-bytes"},
		// 0 reached the http.Server as "no timeout" but httpapi as its 30 s
		// default per flush, and forwards to other instances unbounded.
		{"ErrZeroWriteTimeout", []string{"--write-timeout=0s"}, nil, "--write-timeout"},
		{"ErrZeroReadTimeout", nil, map[string]string{"EVENTLOG_READ_TIMEOUT": "0s"}, "--read-timeout"},
		{"ErrTooManyShards", []string{"--shards=1025"}, nil, "--shards"},
		{"ErrTinyLeaseTTL", []string{"--shard-lease-ttl=1ms"}, nil, "--shard-lease-ttl 1ms: must be at least 1s"},
		{"ErrZeroLeaseTTL", nil, map[string]string{"EVENTLOG_SHARD_LEASE_TTL": "0s"}, "--shard-lease-ttl"},
		{"ErrTinySubscribePoll", []string{"--subscribe-poll=1ms"}, nil, "--subscribe-poll 1ms: must be at least 100ms"},
		{"ErrTinyHeartbeat", []string{"--heartbeat=1us"}, nil, "--heartbeat 1µs: must be at least 100ms"},
		{"ErrTinyQueryTimeout", []string{"--query-timeout=1ms"}, nil, "--query-timeout 1ms: must be at least 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			err := c.ParseFlags("server", tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), func() {}, []string{"--help"}, env(nil), io.Discard, &out)
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	c := DefaultConfig()
	fs := c.flagSet("server", io.Discard)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(out.String(), "-"+f.Name) || !strings.Contains(out.String(), envName(f.Name)) {
			t.Errorf("help lacks --%s or %s", f.Name, envName(f.Name))
		}
	})
	for _, want := range []string{"EVENTLOG_LISTEN", "EVENTLOG_CASSANDRA_HOSTS", "EVENTLOG_KEYSPACE", "EVENTLOG_CONSISTENCY",
		"EVENTLOG_BUCKET_WIDTH", "EVENTLOG_BUCKET_MAX_EVENTS", `(default "127.0.0.1:8080")`, "serve", "migrate", "version"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if n < 25 {
		t.Fatalf("only %d flags", n)
	}
}

func TestRunCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), func() {}, []string{"version"}, env(nil), &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "eventlog server ") {
		t.Fatalf("version: code %d, output %q", code, out.String())
	}
	if code := run(context.Background(), func() {}, []string{"frobnicate"}, env(nil), &out, &errOut); code != 2 {
		t.Fatalf("unknown command: code %d, want 2", code)
	}
	if code := run(context.Background(), func() {}, []string{"serve", "--log-format=xml"}, env(nil), &out, &errOut); code != 2 {
		t.Fatalf("bad flag: code %d, want 2", code)
	}
}

// TestStrictPayloadsFlags: --strict-payloads and --max-payload-depth (or
// their variables) reach the HTTP layer; off and 64 by default.
func TestStrictPayloadsFlags(t *testing.T) {
	c := DefaultConfig()
	if err := c.ParseFlags("server", nil, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	if h := c.httpConfig(nil, nil); h.StrictPayloads || h.MaxPayloadDepth != 64 {
		t.Fatalf("defaults: strict %v, depth %d", h.StrictPayloads, h.MaxPayloadDepth)
	}
	c = DefaultConfig()
	if err := c.ParseFlags("server", []string{"--max-payload-depth=9"}, env(map[string]string{"EVENTLOG_STRICT_PAYLOADS": "true"}), io.Discard); err != nil {
		t.Fatal(err)
	}
	if h := c.httpConfig(nil, nil); !h.StrictPayloads || h.MaxPayloadDepth != 9 {
		t.Fatalf("set: strict %v, depth %d", h.StrictPayloads, h.MaxPayloadDepth)
	}
}

// TestCompressFlags: responses are compressed by default; --compress=false
// or EVENTLOG_COMPRESS=false turns it off in the HTTP layer.
func TestCompressFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want bool // compressed
	}{
		{"Default", nil, nil, true},
		{"FlagOff", []string{"--compress=false"}, nil, false},
		{"EnvOff", nil, map[string]string{"EVENTLOG_COMPRESS": "false"}, false},
		{"FlagWinsOverEnv", []string{"--compress"}, map[string]string{"EVENTLOG_COMPRESS": "false"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			if err := c.ParseFlags("server", tc.args, env(tc.env), io.Discard); err != nil {
				t.Fatal(err)
			}
			if got := !c.httpConfig(nil, nil).DisableCompression; got != tc.want {
				t.Fatalf("compressed = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMaxLongReadsFlag: --max-long-reads (or EVENTLOG_MAX_LONG_READS)
// reaches the HTTP layer, 32 by default; a negative one is refused.
func TestMaxLongReadsFlag(t *testing.T) {
	c := DefaultConfig()
	if err := c.ParseFlags("server", nil, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := c.httpConfig(nil, nil).MaxLongReads; got != 32 {
		t.Fatalf("default %d, want 32", got)
	}
	c = DefaultConfig()
	if err := c.ParseFlags("server", nil, env(map[string]string{"EVENTLOG_MAX_LONG_READS": "5"}), io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := c.httpConfig(nil, nil).MaxLongReads; got != 5 {
		t.Fatalf("from the environment %d, want 5", got)
	}
	c = DefaultConfig()
	if err := c.ParseFlags("server", []string{"--max-long-reads=-1"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "--max-long-reads") {
		t.Fatalf("--max-long-reads=-1: err = %v", err)
	}
	// The share of one API key: a quarter of them unless set.
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 8},
		{[]string{"--max-long-reads=100"}, 25},
		{[]string{"--max-long-reads=2"}, 1},
		{[]string{"--max-long-reads-per-key=32"}, 32},
	} {
		c = DefaultConfig()
		if err := c.ParseFlags("server", tc.args, env(nil), io.Discard); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		h := c.httpConfig(nil, nil)
		h.EnsureDefaults()
		if h.MaxLongReadsPerKey != tc.want {
			t.Fatalf("%v: %d long reads a key, want %d", tc.args, h.MaxLongReadsPerKey, tc.want)
		}
	}
	c = DefaultConfig()
	if err := c.ParseFlags("server", []string{"--max-long-reads-per-key=33"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "long reads per key") {
		t.Fatalf("--max-long-reads-per-key=33 of 32: err = %v", err)
	}
}

// TestMaxGroupReadsFlag: --max-group-reads (or EVENTLOG_MAX_GROUP_READS)
// reaches the HTTP layer, as many as --max-long-reads by default; a
// negative one is refused.
func TestMaxGroupReadsFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want int
	}{
		{nil, nil, 32},
		{[]string{"--max-long-reads=8"}, nil, 8},
		{[]string{"--max-group-reads=100"}, nil, 100},
		{nil, map[string]string{"EVENTLOG_MAX_GROUP_READS": "5"}, 5},
	} {
		c := DefaultConfig()
		if err := c.ParseFlags("server", tc.args, env(tc.env), io.Discard); err != nil {
			t.Fatalf("%v %v: %v", tc.args, tc.env, err)
		}
		h := c.httpConfig(nil, nil)
		h.EnsureDefaults()
		if h.MaxGroupReads != tc.want {
			t.Fatalf("%v %v: %d group reads, want %d", tc.args, tc.env, h.MaxGroupReads, tc.want)
		}
	}
	c := DefaultConfig()
	if err := c.ParseFlags("server", []string{"--max-group-reads=-1"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "group read") {
		t.Fatalf("--max-group-reads=-1: err = %v", err)
	}
}

// TestAdvertiseWildcardWarns: listening on a wildcard address without
// --advertise advertises that address to the other instances, which then
// forward appends to their own host (0.0.0.0:8080) rather than to this
// instance; the server says so at start-up. The README asks for
// --advertise there, but nothing told an operator who missed it until
// appends through a second instance failed.
func TestAdvertiseWildcardWarns(t *testing.T) {
	for _, tc := range []struct {
		listen, advertise string
		warn              bool
	}{
		{"0.0.0.0:8080", "", true},
		{":8080", "", true},
		{"[::]:8080", "", true},
		{"0.0.0.0:8080", "10.0.0.7:8080", false},
		{"127.0.0.1:8080", "", false},
		{"10.0.0.7:8080", "", false},
	} {
		c := DefaultConfig()
		c.Listen, c.Advertise = tc.listen, tc.advertise
		if got := c.advertiseWarning(); (got != "") != tc.warn || tc.warn && !strings.Contains(got, "--advertise") {
			t.Errorf("listen %q advertise %q: warning %q, want one: %t", tc.listen, tc.advertise, got, tc.warn)
		}
	}
}

// TestExplicitZero: a 0 given to a flag whose 0 has no meaning of its own
// is refused, naming the flag and its minimum, by flag or environment
// variable; before, the packages behind them took it for their default
// without a word (--idempotency-window 0 recognised retries for 24h). The
// flags whose 0 the README documents keep it.
func TestExplicitZero(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{
		{"bucket-width", "must be at least 1s"},
		{"bucket-max-events", "must be at least 1000"},
		{"idempotency-window", "must be at least 1m0s"},
		{"group-lease-ttl", "must be at least 100ms"},
		{"bulk-timeout", "must be above 0"},
		{"read-header-timeout", "must be above 0"},
		{"idle-timeout", "must be above 0"},
		{"shutdown-timeout", "must be above 0"},
		{"max-body-bytes", "must be at least 1"},
		{"max-events-per-append", "must be at least 1"},
		{"max-event-bytes", "must be at least 1"},
		{"max-snapshot-bytes", "must be at least 1"},
		{"max-page-size", "must be at least 1"},
		{"max-page-bytes", "must be at least 1"},
		{"max-bulk-lines", "must be at least 1"},
		{"max-bulk-line-bytes", "must be at least 1"},
		{"max-bulk-bytes", "must be at least 1"},
		{"max-subscriptions", "must be at least 1"},
		{"max-subscriptions-per-key", "must be at least 1"},
		{"max-long-reads", "must be at least 1"},
		{"max-payload-depth", "must be at least 1"},
		{"max-header-bytes", "must be at least 1"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			for _, src := range []struct {
				args []string
				env  map[string]string
			}{
				{[]string{"--" + tc.flag + "=0"}, nil},
				{nil, map[string]string{envName(tc.flag): "0"}},
			} {
				c := DefaultConfig()
				err := c.ParseFlags("server", src.args, env(src.env), io.Discard)
				want := "--" + tc.flag + " 0"
				if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.want) ||
					!strings.Contains(err.Error(), "leave the flag out") {
					t.Fatalf("%v %v: err = %v, want one with %q and %q", src.args, src.env, err, want, tc.want)
				}
			}
		})
	}
	t.Run("Minimums", func(t *testing.T) {
		c := DefaultConfig()
		args := []string{"--bucket-width=1s", "--idempotency-window=1m", "--group-lease-ttl=100ms", "--bulk-timeout=1ms",
			"--max-page-size=1", "--max-subscriptions=1", "--max-subscriptions-per-key=1", "--max-long-reads=1",
			"--max-header-bytes=1", "--idle-timeout=1ms", "--read-header-timeout=1ms", "--bucket-max-events=1000"}
		if err := c.ParseFlags("server", args, env(nil), io.Discard); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ZeroWithAMeaning", func(t *testing.T) {
		for _, f := range []string{"shards", "fill-delay", "tail-bytes", "ids-in-memory", "commits-in-flight", "memory-limit",
			"max-groups", "max-group-members", "max-long-reads-per-key", "max-group-reads", "rate-limit", "rate-burst"} {
			c := DefaultConfig()
			if err := c.ParseFlags("server", []string{"--" + f + "=0"}, env(nil), io.Discard); err != nil {
				t.Errorf("--%s=0: %v", f, err)
			}
		}
	})
}
