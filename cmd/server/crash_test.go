package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// crashChildEnv makes the test binary run the crashing server of
// TestCrashAfterAck instead of the tests.
const crashChildEnv = "EVENTLOG_TEST_CRASH_CHILD"

// TestCrashAfterAck kills a real server process (SIGKILL, from inside, once
// its answer is on the wire) after it acknowledged an append and before it
// wrote the feed rows. No instance is running then; when one starts, its
// maintainer repairs the open intent and the events reach their feeds
// within --feed-repair-after plus a few ticks.
func TestCrashAfterAck(t *testing.T) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		runCrashChild(t, spec)
		return
	}
	_, o := cassandratest.NewStore(t, nil)
	feedFlags := []string{"--feed-tick=20ms", "--feed-lag=50ms", "--feed-repair-after=1s"}

	// The child: this test binary, running the server with a feed-write
	// hook that kills the process.
	child, addr := startChild(t, "TestCrashAfterAck", crashChildEnv+"="+o.Keyspace+" "+strings.Join(o.Hosts, ",")+" "+strings.Join(feedFlags, " "))
	base := "http://" + addr

	res, err := http.Post(base+"/v1/streams/crash-1/events", "application/json",
		strings.NewReader(`{"expected_version":"no_stream","events":[{"type":"Acked","data":{"n":1}},{"type":"Acked","data":{"n":2}}]}`))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	var ack struct {
		LastVersion int64 `json:"last_version"`
		Events      []struct {
			ID string `json:"id"`
		} `json:"events"`
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &ack) != nil || ack.LastVersion != 2 {
		t.Fatalf("append: %d %s", res.StatusCode, body)
	}

	// The child kills itself right after answering.
	werr := make(chan error, 1)
	go func() { werr <- child.Wait() }()
	select {
	case err := <-werr:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, want killed by SIGKILL", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child did not crash")
	}

	// Killed between the two: the intent is open and no feed row exists.
	sess := cassandratest.Session(t, o)
	var open int
	iter := sess.Query(`SELECT done FROM feed_outbox WHERE shard = ? AND period >= 0 ALLOW FILTERING`, log.ShardOf("crash-1")).Iter()
	var done *bool
	for iter.Scan(&done) {
		if done == nil || !*done {
			open++
		}
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := sess.Query(`SELECT COUNT(*) FROM feed_events WHERE feed = 'all' ALLOW FILTERING`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if open != 1 || rows != 0 {
		t.Fatalf("after the crash: %d open intents, %d feed rows; want 1 and 0 (killed between ack and feed write)", open, rows)
	}

	// A new instance repairs it.
	start := time.Now()
	MustRunMain(t, o, feedFlags...) // the new instance, whose maintainer repairs
	o.FeedMaintainer = new(bool)    // a reader only
	s := cassandratest.Reopen(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []log.FeedEvent
	for len(got) < 2 {
		page, err := s.ReadFeed(ctx, log.FeedRead{Feed: log.TypeFeed("Acked")})
		if err != nil {
			t.Fatal(err)
		}
		got = page.Events
		if time.Since(start) > 20*time.Second {
			t.Fatalf("acknowledged events not in the feed %v after restart (got %d)", time.Since(start), len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, e := range got {
		if e.Stream != "crash-1" || e.Version != int64(i+1) || e.ID.String() != ack.Events[i].ID {
			t.Fatalf("feed event %d: %s@%d %s, want crash-1@%d %s", i, e.Stream, e.Version, e.ID, i+1, ack.Events[i].ID)
		}
	}
	t.Logf("feed repaired %v after a new instance started", time.Since(start).Round(time.Millisecond))
}

// runCrashChild serves until the first feed write, which it never makes:
// it kills its own process once the append's answer has had time to go out.
func runCrashChild(t *testing.T, spec string) {
	parts := strings.Fields(spec)
	o := cassandra.Options{Keyspace: parts[0], Hosts: strings.Split(parts[1], ",")}
	m := NewMain()
	m.StoreOptions = func(so *cassandra.Options) {
		f := false
		so.FeedMaintainer = &f // this instance must not repair its own crash
		so.BeforeFeedWrite = func() {
			time.Sleep(300 * time.Millisecond)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	args := append([]string{"--listen=127.0.0.1:0", "--keyspace=" + o.Keyspace, "--cassandra-hosts=" + strings.Join(o.Hosts, ",")}, parts[2:]...)
	if err := m.Config.ParseFlags("server", args, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", m.Addr())
	select {}
}

// startChild runs this test binary as a server process for test (whose
// env variable in env makes it serve instead of testing) and returns it
// with the address it serves on, which it prints as "ADDR host:port".
func startChild(t *testing.T, test, env string) (*exec.Cmd, string) {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	child.Env = append(os.Environ(), env)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr <- a
				io.Copy(io.Discard, out)
				return
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("child exited before serving")
		}
		return child, a
	case <-time.After(2 * time.Minute):
		t.Fatal("child did not start")
	}
	return nil, ""
}
