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

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// crashChildEnv makes the test binary run the crashing server of
// TestCrashAfterAck instead of the tests.
const crashChildEnv = "EVENTLOG_TEST_CRASH_CHILD"

// TestCrashAfterAck kills a real server process (SIGKILL) right after it
// acknowledged an append, while the append is in its shard log only: the
// server answers at the log commit and, with a minute's --fill-delay,
// writes the stream partitions later. No instance runs then. A new one
// takes the dead one's shards once their leases have gone unrenewed for a
// lease TTL, writes their committed tails (catch-up), and the acknowledged
// events are in their stream at their acknowledged versions and in their
// feeds, exactly once.
func TestCrashAfterAck(t *testing.T) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		runServeChild(t, spec)
		return
	}
	o := cassandratest.NewKeyspace(t, nil)
	flags := []string{"--shard-lease-ttl=1s", "--fill-delay=1m"}
	child, addr := startChild(t, "TestCrashAfterAck", crashChildEnv+"="+o.Keyspace+" "+strings.Join(o.Hosts, ",")+" "+strings.Join(flags, " "))
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
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() { werr <- child.Wait() }()
	select {
	case err := <-werr:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, want killed by SIGKILL", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child did not die")
	}

	// Killed after the commit, before the fill: the stream's partitions
	// hold nothing yet, its shard log holds the append.
	sess := cassandratest.Session(t, o)
	var rows int
	if err := sess.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = 'crash-1' AND bucket = 0`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("after the crash: %d chunk rows of crash-1; want 0 (killed between the acknowledgement and the fill)", rows)
	}

	// A new instance takes the shards over and writes the tail.
	start := time.Now()
	m := MustRunMain(t, o, flags...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var evs []log.RecordedEvent
	for {
		evs = evs[:0]
		err := m.store.ReadStream(ctx, log.ReadRange{Stream: "crash-1"}, func(e *log.RecordedEvent) error {
			evs = append(evs, *e)
			return nil
		})
		if err == nil && len(evs) > 0 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("crash-1 not readable %v after restart: %d events, %v", time.Since(start), len(evs), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(evs) != 2 {
		t.Fatalf("crash-1 holds %d events, want the 2 acknowledged", len(evs))
	}
	for i, e := range evs {
		if e.Version != int64(i+1) || e.ID.String() != ack.Events[i].ID {
			t.Fatalf("event %d: %s@%d, want %s@%d", i, e.ID, e.Version, ack.Events[i].ID, i+1)
		}
	}
	for _, feed := range []log.Feed{log.TypeFeed("Acked"), log.AllFeed, log.CategoryFeed("crash")} {
		page, err := m.store.ReadFeed(ctx, log.FeedRead{Feed: feed})
		if err != nil {
			t.Fatalf("feed %v: %v", feed, err)
		}
		if len(page.Events) != 2 {
			t.Fatalf("feed %v: %d events, want the 2 acknowledged once each", feed, len(page.Events))
		}
		for i, e := range page.Events {
			if e.Stream != "crash-1" || e.Version != int64(i+1) || e.ID.String() != ack.Events[i].ID {
				t.Fatalf("feed %v event %d: %s@%d %s, want crash-1@%d %s", feed, i, e.Stream, e.Version, e.ID, i+1, ack.Events[i].ID)
			}
		}
	}
	t.Logf("stream and feeds whole %v after a new instance started", time.Since(start).Round(time.Millisecond))
}

// runServeChild serves (spec: keyspace, hosts, then flags) until killed.
func runServeChild(t *testing.T, spec string) {
	parts := strings.Fields(spec)
	m := NewMain()
	args := append([]string{"--listen=127.0.0.1:0", "--keyspace=" + parts[0], "--cassandra-hosts=" + parts[1]}, parts[2:]...)
	if err := m.Config.ParseFlags("server", args, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
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
