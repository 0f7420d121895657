package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// sigtermChildEnv makes the test binary run `server serve` as main does
// (signals, run, exit code) instead of the tests.
const sigtermChildEnv = "EVENTLOG_TEST_SIGTERM_CHILD"

// runMainChild runs the server command as main does with spec (listen
// address, then the other arguments), printing "ADDR host:port" once
// /healthz answers, and exits with run's code.
func runMainChild(spec string) {
	args := strings.Fields(spec)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := strings.TrimPrefix(args[0], "--listen=")
	go func() {
		for {
			if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
				res.Body.Close()
				fmt.Printf("ADDR %s\n", addr)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	os.Exit(run(ctx, stop, append([]string{"serve"}, args...), os.Getenv, os.Stdout, os.Stderr))
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sigtermPair starts two instances on a fresh keyspace of 4 shards, both
// with 1 s shard leases: a server process (the test binary running t
// again as a child, with --shutdown-timeout=shutdown) listening on addrA,
// and b in this process; it returns once both own shards. In that child
// it runs the server as main does and exits: a test calls it first.
func sigtermPair(t *testing.T, shutdown string) (child *exec.Cmd, addrA string, b *Main) {
	t.Helper()
	if spec := os.Getenv(sigtermChildEnv); spec != "" {
		runMainChild(spec) // exits
	}
	o := cassandratest.NewKeyspace(t, nil) // 4 shards
	addrA = freeAddr(t)
	child, _ = startChild(t, t.Name(), sigtermChildEnv+"="+"--listen="+addrA+" --keyspace="+o.Keyspace+" --cassandra-hosts="+strings.Join(o.Hosts, ",")+
		" --shard-lease-ttl=1s --shutdown-timeout="+shutdown+" --log-level=warn")
	b = MustRunMain(t, o, "--shard-lease-ttl=1s")
	waitFor(t, 30*time.Second, "both instances to own shards", func() bool { n := len(b.store.Owned()); return n > 0 && n < 4 })
	return child, addrA, b
}

// errorLog records the transport errors of requests sent to one address,
// and the bodies of the appends among them that were not refused.
type errorLog struct {
	addr string
	mu   sync.Mutex
	errs []error
	cut  [][]byte // bodies of appends that ended without an answer
}

// noKeepAlive sends each request on a connection of its own: a request
// sent on a kept-alive connection as the server closes it (idle, at
// shutdown) fails with EOF unread, which would hide the cases below.
var noKeepAlive = &http.Transport{DisableKeepAlives: true}

func (e *errorLog) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	res, err := noKeepAlive.RoundTrip(req)
	if err != nil && req.URL.Host == e.addr {
		e.mu.Lock()
		e.errs = append(e.errs, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err))
		if !errors.Is(err, syscall.ECONNREFUSED) && req.Method == http.MethodPost {
			e.cut = append(e.cut, body)
		}
		e.mu.Unlock()
	}
	return res, err
}

// TestSIGTERMUnderLoad stops (SIGTERM) a real server process that owns
// shards while appends flow through it and through another instance,
// and a live subscription reads from it. It exits 0 within
// --shutdown-timeout plus the handover's 30 s; the subscription ends
// rather than hangs; every append it handled is answered (one may find
// its listener closed, or be dropped unread by Go's server, never cut
// after it was handled); and everything acknowledged, through either,
// is in its stream and the all feed, read from the survivor.
func TestSIGTERMUnderLoad(t *testing.T) {
	child, addrA, b := sigtermPair(t, "10s")
	baseA, baseB := "http://"+addrA, "http://"+b.Addr()

	sub, err := http.NewRequest(http.MethodGet, baseA+"/v1/streams/term-0/subscribe", nil)
	if err != nil {
		t.Fatal(err)
	}
	sub.Header.Set("Accept", "application/x-ndjson")
	subRes, err := http.DefaultClient.Do(sub)
	if err != nil || subRes.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %v %v", subRes, err)
	}
	subEnded := make(chan int, 1)
	go func() {
		n := 0
		for sc := bufio.NewScanner(subRes.Body); sc.Scan(); n++ {
		}
		subRes.Body.Close()
		subEnded <- n
	}()

	errs := &errorLog{addr: addrA}
	var n atomic.Int64
	aDown := atomic.Bool{}
	pick := func() string {
		if !aDown.Load() && n.Add(1)%2 == 0 {
			return baseA
		}
		return baseB
	}
	load := startLoadWith(t, &http.Client{Timeout: 20 * time.Second, Transport: errs}, "term", 8, 16, pick)
	time.Sleep(2 * time.Second)
	termAt := time.Now()
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() { werr <- child.Wait() }()
	select {
	case err := <-werr:
		aDown.Store(true)
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", err)
		}
		t.Logf("exited %v after SIGTERM", time.Since(termAt).Round(time.Millisecond))
	case <-time.After(10*time.Second + 30*time.Second + 5*time.Second):
		t.Fatal("still running past --shutdown-timeout plus the handover's 30 s")
	}
	select {
	case got := <-subEnded:
		t.Logf("subscription ended after %d lines", got)
	case <-time.After(5 * time.Second):
		t.Error("the live subscription did not end with the process")
	}
	waitFor(t, 20*time.Second, "the survivor to own every shard", func() bool { return len(b.store.Owned()) == 4 })
	time.Sleep(time.Second)
	load.Stop()

	// Go's server drops, unanswered, a request whose headers it reads
	// once Shutdown has begun (net/http, conn.serve): the client sees EOF.
	// Such an append was never handled, so none of its events is stored.
	errs.mu.Lock()
	refused := len(errs.errs) - len(errs.cut)
	cut := errs.cut
	errs.mu.Unlock()
	stored := map[string]bool{}
	for s := range 8 {
		for _, e := range readStream(t, load.client, baseB, fmt.Sprintf("term-%d", s)) {
			stored[e.ID] = true
		}
	}
	for _, body := range cut {
		var req struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("append body %s: %v", body, err)
		}
		for _, e := range req.Events {
			if stored[e.ID] {
				t.Fatalf("an append cut without an answer was stored (event %s): the server handled it and dropped its answer", e.ID)
			}
		}
	}
	acked, unknown := load.check(t, baseB)
	t.Logf("%d appends acknowledged, %d of unknown outcome, %d requests refused by the closed listener, %d appends cut unread", acked, unknown, refused, len(cut))
}

// TestSIGTERMHandsShardsOverWhileRequestsFinish stops (SIGTERM) a real
// server process that owns shards while a bulk request it accepted is
// still sending lines. The other instance's appends to the stopping
// one's shards succeed again while that request runs: the stopping
// instance hands its shards over at once, rather than after the requests
// in flight (up to --shutdown-timeout) while its listener, closed first,
// refused every append the others forwarded to it (503 for the whole
// wait). The bulk request then ends answered, every line appended (the
// last ones forwarded to the new owners), and the process exits 0.
func TestSIGTERMHandsShardsOverWhileRequestsFinish(t *testing.T) {
	child, addrA, b := sigtermPair(t, "2m")
	baseA, baseB := "http://"+addrA, "http://"+b.Addr()
	// A stream in each shard.
	streams := map[int]string{}
	for i := 0; len(streams) < 4; i++ {
		name := fmt.Sprintf("hand-%d", i)
		if sh := partition.ShardOf(name, 4); streams[sh] == "" {
			streams[sh] = name
		}
	}
	appendVia := func(base, stream string) int {
		res, err := http.Post(base+"/v1/streams/"+stream+"/events", "application/json", strings.NewReader(`{"events":[{"type":"t","data":1}]}`))
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	bulk := make(chan string, 1)
	go func() {
		res, err := http.Post(baseA+"/v1/events", "application/x-ndjson", pr)
		if err != nil {
			bulk <- err.Error()
			return
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		bulk <- fmt.Sprintf("%d %s", res.StatusCode, raw)
	}()
	line := func(stream string) string {
		return `{"stream":"` + stream + `","events":[{"type":"t","data":1}]}` + "\n"
	}
	for _, s := range streams {
		io.WriteString(pw, line(s))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitFor(t, 30*time.Second, "the bulk request's first lines to be appended", func() bool {
		for _, s := range streams {
			if info, err := b.store.Info(ctx, log.StreamID(s)); err != nil || info.Version != 1 {
				return false
			}
		}
		return true
	})
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "appends through the other instance to every shard to succeed while the bulk request runs", func() bool {
		for _, s := range streams {
			if appendVia(baseB, s) != http.StatusCreated {
				return false
			}
		}
		return true
	})
	if got := len(b.store.Owned()); got != 4 {
		t.Errorf("the other instance owns %d shards of 4", got)
	}
	for _, s := range streams {
		io.WriteString(pw, line(s))
	}
	pw.Close()
	if got := <-bulk; !strings.HasPrefix(got, "200 ") || strings.Count(got, `"status":201`) != 8 {
		t.Fatalf("bulk request: %s; want its 8 lines appended", got)
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v, want exit 0", err)
	}
	for _, s := range streams {
		info, err := b.store.Info(ctx, log.StreamID(s))
		if err != nil || info.Version < 3 {
			t.Fatalf("%s: version %d, %v; want the 2 bulk lines and the other instance's appends", s, info.Version, err)
		}
	}
}
