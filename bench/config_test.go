package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		for _, s := range scenarios {
			c, err := parseArgs(s.name, nil, io.Discard)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got, want := c.Scenario, s.name; got != want {
				t.Fatalf("scenario %q, want %q", got, want)
			}
		}
	})
	t.Run("Flags", func(t *testing.T) {
		c, err := parseArgs("ingest", []string{"--streams", "5", "--dist", "hot", "--hot-streams", "2", "--events-per-append", "100",
			"--event-size", "4096", "--expected", "exact", "--rate", "50", "--duration", "2s", "--url", "http://localhost:9999"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.Streams != 5 || c.HotStreams != 2 || c.EventsPerAppend != 100 || c.EventSize != 4096 || c.Expected != "exact" ||
			c.Rate != 50 || c.Duration != 2*time.Second || c.URL != "http://localhost:9999" {
			t.Fatalf("parsed %+v", c)
		}
	})
	t.Run("Subscribe", func(t *testing.T) {
		c, err := parseArgs("subscribe", nil, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.Rate != 500 || c.Subscribers != 1 || c.Feed != "all" {
			t.Fatalf("defaults: rate %v, subscribers %d, feed %q; want an open loop of 500/s, 1, all", c.Rate, c.Subscribers, c.Feed)
		}
		c, err = parseArgs("subscribe", []string{"--subscribers", "3", "--feed", "category/orders", "--rate", "0", "--drain", "2s"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subscribers != 3 || c.Feed != "category/orders" || c.Rate != 0 || c.Drain != 2*time.Second {
			t.Fatalf("parsed %+v", c)
		}
	})
	t.Run("Help", func(t *testing.T) {
		if _, err := parseArgs("replay", []string{"--help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("got %v, want flag.ErrHelp", err)
		}
	})
	bad := []struct {
		name     string
		scenario string
		args     []string
		want     string
	}{
		{"UnknownScenario", "load", nil, "unknown scenario"},
		{"NotLoopbackURL", "ingest", []string{"--url", "http://10.1.2.3:8080"}, "loopback"},
		{"PublicURL", "ingest", []string{"--url", "http://example.com:8080"}, "loopback"},
		{"HTTPSURL", "ingest", []string{"--url", "https://127.0.0.1:8080"}, "want http://host:port"},
		{"NotLoopbackCassandra", "baseline", []string{"--cassandra-hosts", "192.168.1.5"}, "loopback"},
		{"Dist", "ingest", []string{"--dist", "pareto"}, "--dist"},
		{"ZipfS", "ingest", []string{"--dist", "zipf", "--zipf-s", "1"}, "--zipf-s"},
		{"HotStreams", "ingest", []string{"--dist", "hot", "--streams", "3", "--hot-streams", "4"}, "--hot-streams"},
		{"HotShare", "baseline", []string{"--dist", "hot", "--hot-share", "0"}, "--hot-share"},
		{"EventsPerAppend", "ingest", []string{"--events-per-append", "1001"}, "--events-per-append"},
		{"EventSize", "ingest", []string{"--event-size", "300"}, "--event-size"},
		{"Expected", "ingest", []string{"--expected", "exists"}, "--expected"},
		{"Concurrency", "ingest", []string{"--concurrency", "0"}, "--concurrency"},
		{"Rate", "ingest", []string{"--rate", "-1"}, "--rate"},
		{"Duration", "baseline", []string{"--duration", "1ms"}, "--duration"},
		{"Variant", "baseline", []string{"--variant", "logged"}, "--variant"},
		{"Keyspace", "baseline", []string{"--baseline-keyspace", "Bad-Name"}, "keyspace"},
		{"SameKeyspace", "compare", []string{"--baseline-keyspace", "eventlog"}, "must differ"},
		{"Rounds", "compare", []string{"--rounds", "0"}, "--rounds"},
		{"Events", "replay", []string{"--events", "10"}, "--events"},
		{"Stream", "replay", []string{"--stream", "bad id"}, "--stream"},
		{"SnapshotEvery", "replay", []string{"--snapshot-every", "5"}, "--snapshot-every"},
		{"AcceptEncoding", "replay", []string{"--accept-encoding", "br"}, "--accept-encoding"},
		{"IngestHasNoAcceptEncoding", "ingest", []string{"--accept-encoding", "gzip"}, "flag provided but not defined"},
		{"FlagOfAnotherScenario", "baseline", []string{"--url", "http://127.0.0.1:1"}, "flag provided but not defined"},
		{"ReplayHasNoRate", "replay", []string{"--rate", "5"}, "flag provided but not defined"},
		{"Positional", "ingest", []string{"extra"}, "unexpected argument"},
		{"Subscribers", "subscribe", []string{"--subscribers", "0"}, "--subscribers"},
		{"FeedKind", "subscribe", []string{"--feed", "stream/x"}, "--feed"},
		{"FeedCategoryDash", "subscribe", []string{"--feed", "category/a-b"}, "--feed"},
		{"FeedTypeNotGenerated", "subscribe", []string{"--feed", "type/UserCreated"}, "only the types"},
		{"Drain", "subscribe", []string{"--drain", "1ms"}, "--drain"},
		{"IngestHasNoFeed", "ingest", []string{"--feed", "all"}, "flag provided but not defined"},
		{"Route", "ingest", []string{"--route", "hash"}, "--route"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := parseArgs(b.scenario, b.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("got %v, want an error containing %q", err, b.want)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	var out strings.Builder
	if got, want := run(t.Context(), nil, io.Discard, &out), 2; got != want {
		t.Fatalf("exit %d, want %d", got, want)
	}
	for _, s := range scenarios {
		if !strings.Contains(out.String(), s.name) {
			t.Fatalf("usage lacks %s:\n%s", s.name, out.String())
		}
	}
	if got, want := run(t.Context(), []string{"ingest", "--dist", "x"}, io.Discard, io.Discard), 2; got != want {
		t.Fatalf("bad flag: exit %d, want %d", got, want)
	}
}

// TestAllowRemote: --allow-remote lets --url, --spread-urls and
// --cassandra-hosts name another machine (without it they must be
// loopback, see TestParseArgs); the URL must still be http://host:port.
func TestAllowRemote(t *testing.T) {
	c, err := parseArgs("ingest", []string{"--allow-remote", "--url", "http://10.1.2.3:8080", "--spread-urls", "http://10.1.2.4:8080"}, io.Discard)
	if err != nil || !c.AllowRemote || c.URL != "http://10.1.2.3:8080" {
		t.Fatalf("ingest --allow-remote: %v %+v", err, c)
	}
	if _, err := parseArgs("baseline", []string{"--allow-remote", "--cassandra-hosts", "192.168.1.5"}, io.Discard); err != nil {
		t.Fatalf("baseline --allow-remote --cassandra-hosts 192.168.1.5: %v", err)
	}
	if _, err := parseArgs("replay", []string{"--allow-remote", "--url", "https://10.1.2.3:8080"}, io.Discard); err == nil || !strings.Contains(err.Error(), "want http://host:port") {
		t.Fatalf("an https URL with --allow-remote: %v", err)
	}
	if _, err := parseArgs("ingest", []string{"--url", "http://10.1.2.3:8080"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--allow-remote") {
		t.Fatalf("without --allow-remote the error should name it: %v", err)
	}
	if _, err := parseArgs("smoke", []string{"--allow-remote"}, io.Discard); err == nil {
		t.Fatal("smoke (in-process, loopback) took --allow-remote")
	}
}

// TestFindProcsRemote: processes on another machine are not looked for
// here (a local one on the same port would be the wrong one).
func TestFindProcsRemote(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	local := Config{URL: fmt.Sprintf("http://127.0.0.1:%d", port), CassandraHosts: []string{"127.0.0.1"}}
	if p := findProcs(&local, true); p.server != os.Getpid() {
		t.Fatalf("loopback URL: server pid %d, want this process %d", p.server, os.Getpid())
	}
	remote := Config{URL: fmt.Sprintf("http://10.1.2.3:%d", port), CassandraHosts: []string{"10.1.2.3"}, AllowRemote: true}
	if p := findProcs(&remote, true); p.server != 0 || p.cassandra != 0 {
		t.Fatalf("remote URL and hosts: found pids %+v here", p)
	}
}

// TestFindProcsSpread: with --spread-urls the other servers listening
// here are measured too (two-instance runs reported one server's CPU as
// all of it), each once, and never the --url server twice.
func TestFindProcsSpread(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	own := fmt.Sprintf("http://127.0.0.1:%d", ln.Addr().(*net.TCPAddr).Port)
	child, childURL := listenerChild(t)
	c := Config{URL: own, SpreadURLs: []string{childURL, own, childURL}, CassandraHosts: []string{"127.0.0.1"}}
	p := findProcs(&c, true)
	if p.server != os.Getpid() || len(p.more) != 1 || p.more[0] != child {
		t.Fatalf("servers %d + %v, want %d + [%d]", p.server, p.more, os.Getpid(), child)
	}
	if got := p.servers(); len(got) != 2 {
		t.Fatalf("servers() = %v", got)
	}
	m := startMeter(procs{server: p.server, more: p.more})
	ps := m.stop(1)
	if ps.ServerCPUUSPerEvent == nil || len(ps.MoreServerPIDs) != 1 {
		t.Fatalf("stats %+v", ps)
	}
	if want := max(rssBytes(os.Getpid(), "VmRSS"), rssBytes(child, "VmRSS")); ps.ServerPeakRSSBytes < want/2 {
		t.Fatalf("peak RSS %d, want about the larger of the two (%d)", ps.ServerPeakRSSBytes, want)
	}
}

// listenerChild starts this test binary again as a process that listens
// on a loopback port until the test ends, and returns its pid and URL.
func listenerChild(t *testing.T) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenerChild$")
	cmd.Env = append(os.Environ(), "BENCH_TEST_LISTENER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return cmd.Process.Pid, strings.TrimSpace(line)
}

// TestListenerChild is listenerChild's other side: it prints its URL and
// listens until its stdin closes.
func TestListenerChild(t *testing.T) {
	if os.Getenv("BENCH_TEST_LISTENER") != "1" {
		t.Skip("run by listenerChild")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fmt.Printf("http://127.0.0.1:%d\n", ln.Addr().(*net.TCPAddr).Port)
	io.Copy(io.Discard, os.Stdin)
}

// TestRawReadsFlags: the rawreads scenario parses flags of its own and,
// like the others, refuses to leave loopback.
func TestRawReadsFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"rawreads", "--help"}, 0, ""},
		{[]string{"rawreads"}, 1, "--keyspace is required"},
		{[]string{"rawreads", "--keyspace", "k", "--cassandra-host", "10.1.2.3"}, 1, "not a loopback address"},
		{[]string{"rawreads", "--keyspace", "k", "--url", "http://10.1.2.3:8080"}, 1, "not a loopback address"},
	} {
		var errOut strings.Builder
		if got := run(t.Context(), c.args, io.Discard, &errOut); got != c.code || !strings.Contains(errOut.String(), c.says) {
			t.Errorf("%v: exit %d (%q), want %d saying %q", c.args, got, errOut.String(), c.code, c.says)
		}
	}
}
