// getrusage (the reference for cpuTime) is Unix-only; the harness reads
// /proc anyway.

//go:build unix

package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestEventVersion(t *testing.T) {
	line := []byte(`{"id":"0190a1b2-0000-7000-8000-000000000001","type":"UserCreated","version":1234,"time":"2026-11-22T10:47:30.368000Z","data":{"version":7}}`)
	if v, ok := eventVersion(line); !ok || v != 1234 {
		t.Fatalf("got %d %v, want 1234", v, ok)
	}
	if _, ok := eventVersion([]byte(`{"id":"x"}`)); ok {
		t.Fatal("found a version in an event without one")
	}
}

func TestPageNext(t *testing.T) {
	for _, c := range []struct {
		body string
		want int64
		ok   bool
	}{
		{`{"stream":"s","events":[{"id":"a"}],"next":1001}` + "\n", 1001, true},
		{`{"stream":"s","events":[],"next":null}` + "\n", 0, true},
		{`{"stream":"s","events":[]`, 0, false},
		{`{"stream":"s","events":[],"next":-3}`, 0, false},
	} {
		got, ok := pageNext([]byte(c.body))
		if got != c.want || ok != c.ok {
			t.Errorf("pageNext(%s) = %d %v, want %d %v", c.body, got, ok, c.want, c.ok)
		}
	}
}

func TestBuildAppendSize(t *testing.T) {
	for _, size := range eventSizes {
		n := buildAppendSize(size)
		if n < 1 || n > 1000 {
			t.Fatalf("size %d: %d events per append", size, n)
		}
		// Under the server's 4 MiB body limit with ids and framing.
		if body := n * (size*11/10 + 100); body > 4<<20 {
			t.Fatalf("size %d: %d-event appends are about %d bytes", size, n, body)
		}
	}
}

// rusageCPU is the user + system CPU time of this process as getrusage
// reports it, the reference for cpuTime.
func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestCPUTimeOfSelf(t *testing.T) {
	if _, err := cpuTime(1); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	// Spend well over a tick of CPU, so a wrong field or unit shows.
	for start := rusageCPU(t); rusageCPU(t)-start < 100*time.Millisecond; {
		for i := 0; i < 1e5; i++ {
			_ = i * i
		}
	}
	before := rusageCPU(t)
	d, err := cpuTime(osGetpid())
	after := rusageCPU(t)
	if err != nil {
		t.Fatal(err)
	}
	// /proc/<pid>/stat counts utime and stime in whole ticks, each rounded
	// down: up to two ticks below getrusage's figure for the same moment.
	tick := time.Second / clockTicks
	if d%tick != 0 || d < before-2*tick || d > after {
		t.Fatalf("cpuTime(self) = %v, want a multiple of %v in [%v, %v] (getrusage before and after)", d, tick, before-2*tick, after)
	}
	if rssBytes(osGetpid(), "VmRSS") <= 0 {
		t.Fatal("no VmRSS for self")
	}
}

func osGetpid() int { return os.Getpid() }

// TestRawStatements: the raw reads send exactly the server's statements
// (internal/cassandra/streams read.go), which the bench keeps a copy of
// rather than importing internals: read from the server's source here.
func TestRawStatements(t *testing.T) {
	server := serverConsts(t, "../internal/cassandra/streams/read.go")
	for _, c := range []struct{ name, bench, server string }{
		{"buckets", cqlRawBuckets, "cqlBuckets"},
		{"chunks", cqlReadChunks, "cqlChunksAsc"},
	} {
		if got, ok := server[c.server]; !ok || got != c.bench {
			t.Errorf("%s: bench sends %q, the server's %s is %q", c.name, c.bench, c.server, got)
		}
	}
}

// serverConsts returns the string constants (plain literals) of a Go
// source file.
func serverConsts(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, sp := range g.Specs {
			vs := sp.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if v, err := strconv.Unquote(lit.Value); err == nil {
						out[n.Name] = v
					}
				}
			}
		}
	}
	return out
}

// A replay ratio with rounds is the median of the rounds' ratios (the
// rounds pair readers that ran back to back), not a ratio of medians:
// here they differ (1 against 3).
func TestReplayRatiosPairRounds(t *testing.T) {
	read := func(name string, rate float64) Phase {
		return Phase{Name: name, Kind: "read", EventsPerS: rate}
	}
	phases := []Phase{
		read("feed-ndjson", 100), read("ndjson", 100), // 1
		read("feed-ndjson", 300), read("ndjson", 100), // 3
		read("feed-ndjson", 400), read("ndjson", 400), // 1 — medians: 300 / 100
		read("raw-parallel", 100), read("raw-parallel", 100), read("raw-parallel", 100),
	}
	var feed *Ratio
	for _, r := range replayRatios(phases) {
		if r.Name == "feed-ndjson/ndjson events/s" {
			feed = &r
		}
	}
	if feed == nil {
		t.Fatal("no feed-ndjson/ndjson ratio")
	}
	if !slices.Equal(feed.Rounds, []float64{1, 3, 1}) || feed.Value != 1 {
		t.Errorf("ratio = %v (rounds %v), want 1 (rounds [1 3 1])", feed.Value, feed.Rounds)
	}
	one := replayRatios([]Phase{read("feed-ndjson", 100), read("ndjson", 400)})
	if len(one) != 1 || one[0].Value != 0.25 || one[0].Rounds != nil {
		t.Errorf("one round: %+v, want the single ratio 0.25", one)
	}
}
