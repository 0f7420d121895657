package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// verifyCmd runs `server verify ...` against keyspace.
func verifyCmd(t *testing.T, keyspace string, hosts []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(append([]string{"verify"}, args...), "--keyspace="+keyspace, "--cassandra-hosts="+strings.Join(hosts, ","), "--log-format=text")
	code := run(context.Background(), func() {}, args, env(nil), &out, &errOut)
	return code, out.String(), errOut.String()
}

// flipIn changes the byte after the first occurrence of mark in b (a
// digit of an event's data, which only a checksum catches).
func flipIn(t *testing.T, b []byte, mark string) []byte {
	t.Helper()
	i := bytes.Index(b, []byte(mark))
	if i < 0 {
		t.Fatalf("%q is not in the row %x", mark, b)
	}
	b = bytes.Clone(b)
	b[i+len(mark)] ^= 0x01
	return b
}

// TestVerifyCommand: server verify reads every shard log record and, with
// --streams, every stream row, and exits 0 on a keyspace whose rows are
// intact; with a log record, a chunk row, a run row, a row's ids column
// and (with --snapshots) a snapshot each changed in Cassandra (a disk's
// error), it prints each one's key (shard, segment and seq; stream,
// bucket and versions; stream and version) and exits 3, without
// --streams and --snapshots the log record alone.
func TestVerifyCommand(t *testing.T) {
	store, opts := shardstoretest.NewStore(t, nil)
	o := opts.Cassandra
	ctx := context.Background()
	session := cassandratest.Session(t, o)

	// Log records and their streams' rows, through the store.
	for i, stream := range []string{"v-log", "v-a", "v-b"} {
		for j := range 3 {
			req := log.AppendRequest{Stream: log.StreamID(stream), Expected: log.Any, Events: []log.ProposedEvent{
				{ID: uuid.New(), ClientID: true, Type: "t", Data: json.RawMessage(fmt.Sprintf(`{"%s":%d}`, stream, 10*i+j))}}}
			if _, err := store.Append(ctx, req); err != nil {
				t.Fatal(err)
			}
			// A read writes the stream's rows: here a row per append.
			if err := store.ReadStream(ctx, log.ReadRange{Stream: log.StreamID(stream), From: 1}, func(*log.RecordedEvent) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, stream := range []log.StreamID{"v-a", "v-b"} {
		if _, err := store.PutSnapshot(ctx, stream, 3, json.RawMessage(`{"state":"`+stream+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// A run row of 20 chunks, and a chunk row with an ids column (as
	// builds between migrations 0004 and 0005 wrote them), by hand.
	ss := streams.New(session, 100, time.Hour)
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	pendings := func(stream log.StreamID, n int) []streams.Pending {
		var ps []streams.Pending
		for v := 1; v <= n; v++ {
			c := record.Chunk{Stream: stream, FirstVersion: int64(v), OpensBucket: v == 1, Appends: []record.ChunkAppend{{ClientIDs: true,
				Events: []record.Event{{ID: uuid.New(), Type: "t", Data: fmt.Appendf(nil, `{"v":%d}`, v)}}}}}
			ps = append(ps, streams.NewPending(int64(v), t0.Add(time.Duration(v)*time.Millisecond), &c))
		}
		return ps
	}
	if err := ss.WriteStream(ctx, pendings("v-run", 20), nil); err != nil {
		t.Fatal(err)
	}
	old := pendings("v-ids", 1)[0]
	if err := session.Query(`INSERT INTO stream_events (stream, bucket, last_version, first_version, time, shard_seq, record, ids) VALUES ('v-ids', 0, 1, 1, ?, 1, ?, ?)`,
		t0, old.Body, old.IDs).Exec(); err != nil {
		t.Fatal(err)
	}

	t.Run("Clean", func(t *testing.T) {
		code, out, errOut := verifyCmd(t, o.Keyspace, o.Hosts, "--streams", "--snapshots", "--concurrency=2", "--rate=10000")
		if code != 0 || out != "" {
			t.Fatalf("verify of an intact keyspace: exit %d, stdout %q, stderr %s", code, out, errOut)
		}
		for _, want := range []string{"log_records=", "stream_rows=", "snapshots=2", "corrupt=0"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q: %s", want, errOut)
			}
		}
	})

	// The corruptions, each a row rewritten with one byte changed.
	shard, segment, seq, rec := logRecordHolding(t, session, `{"v-log":1}`)
	mustExec(t, session, `UPDATE shard_log SET record = ? WHERE shard = ? AND segment = ? AND seq = ?`, flipIn(t, rec, `{"v-log":`), shard, segment, seq)
	rewrite := func(stream string, last int64, col, mark string) {
		var (
			b  []byte
			ts int64
		)
		if err := session.Query(`SELECT `+col+`, WRITETIME(record) FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = ?`, stream, last).Scan(&b, &ts); err != nil {
			t.Fatalf("%s@%d: %v", stream, last, err)
		}
		mustExec(t, session, `UPDATE stream_events USING TIMESTAMP ? SET `+col+` = ? WHERE stream = ? AND bucket = 0 AND last_version = ?`, ts+1, flipIn(t, b, mark), stream, last)
	}
	rewrite("v-a", 2, "record", `{"v-a":1`)  // the chunk of v-a's second append
	rewrite("v-run", 20, "record", `{"v":1`) // the run's first part
	id := old.IDs[2:18]                      // the list's one id, after its format byte and offset
	rewrite("v-ids", 1, "ids", string(id[:4]))
	var (
		snap []byte
		wt   int64
	)
	if err := session.Query(`SELECT data, WRITETIME(data) FROM snapshots WHERE stream = 'v-b' AND version = 3`).Scan(&snap, &wt); err != nil {
		t.Fatal(err)
	}
	snap[len(snap)-1] ^= 0x01
	mustExec(t, session, `UPDATE snapshots USING TIMESTAMP ? SET data = ? WHERE stream = 'v-b' AND version = 3`, wt+1, snap)

	want := []string{
		fmt.Sprintf(`{"kind":"log_record","shard":%d,"segment":%d,"seq":%d,"filled":true}`, shard, segment, seq),
		`{"kind":"chunk","stream":"v-a","bucket":0,"first_version":2,"last_version":2}`,
		`{"kind":"run","stream":"v-run","bucket":0,"first_version":1,"last_version":20}`,
		`{"kind":"chunk_ids","stream":"v-ids","bucket":0,"first_version":1,"last_version":1}`,
		`{"kind":"snapshot","stream":"v-b","version":3}`,
	}
	t.Run("Corrupt", func(t *testing.T) {
		code, out, errOut := verifyCmd(t, o.Keyspace, o.Hosts, "--streams", "--snapshots", "--format=json")
		if code != exitCorrupt {
			t.Fatalf("exit %d, want %d: %s", code, exitCorrupt, errOut)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var f map[string]any
			if err := json.Unmarshal([]byte(line), &f); err != nil {
				t.Fatalf("not a JSON line: %q", line)
			}
			if e, _ := f["error"].(string); !strings.Contains(e, "corrupt") {
				t.Errorf("finding %s does not say what is wrong", line)
			}
			delete(f, "error")
			b, _ := json.Marshal(f)
			got = append(got, string(b))
		}
		slices.Sort(got)
		w := slices.Clone(want)
		for i := range w { // the same keys, as json.Marshal orders a map's
			var f map[string]any
			_ = json.Unmarshal([]byte(w[i]), &f)
			b, _ := json.Marshal(f)
			w[i] = string(b)
		}
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	})

	t.Run("LogsOnly", func(t *testing.T) {
		code, out, errOut := verifyCmd(t, o.Keyspace, o.Hosts)
		wantLine := fmt.Sprintf("log_record shard=%d segment=%d seq=%d filled: ", shard, segment, seq)
		if code != exitCorrupt || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, wantLine) {
			t.Fatalf("exit %d, stdout %q; want %d and one line %q…: %s", code, out, exitCorrupt, wantLine, errOut)
		}
	})

	t.Run("BadFlags", func(t *testing.T) {
		for _, args := range [][]string{{"--format=xml"}, {"--concurrency=0"}, {"--rate=-1"}} {
			if code, _, _ := verifyCmd(t, o.Keyspace, o.Hosts, args...); code != 2 {
				t.Errorf("%v: exit %d, want 2", args, code)
			}
		}
	})
}

func mustExec(t *testing.T, session *gocql.Session, stmt string, args ...any) {
	t.Helper()
	if err := session.Query(stmt, args...).Exec(); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyUnfilledRecord: a corrupt log record whose appends are not
// yet written to their streams (its shard's owner holds them, here for
// --fill-delay) is reported as not filled: the record a new owner's
// takeover would fail on.
func TestVerifyUnfilledRecord(t *testing.T) {
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) { so.FillDelay = time.Hour })
	o := opts.Cassandra
	ctx := context.Background()
	session := cassandratest.Session(t, o)
	req := log.AppendRequest{Stream: "u-1", Expected: log.Any, Events: []log.ProposedEvent{{ID: uuid.New(), Type: "t", Data: json.RawMessage(`{"u":5}`)}}}
	if _, err := store.Append(ctx, req); err != nil {
		t.Fatal(err)
	}
	shard, segment, seq, rec := logRecordHolding(t, session, `{"u":5}`)
	mustExec(t, session, `UPDATE shard_log SET record = ? WHERE shard = ? AND segment = ? AND seq = ?`, flipIn(t, rec, `{"u":`), shard, segment, seq)
	code, out, errOut := verifyCmd(t, o.Keyspace, o.Hosts, "--format=json")
	want := fmt.Sprintf(`{"kind":"log_record","shard":%d,"segment":%d,"seq":%d,"filled":false,`, shard, segment, seq)
	if code != exitCorrupt || !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
		t.Fatalf("exit %d, stdout %q; want %d and %s…: %s", code, out, exitCorrupt, want, errOut)
	}
}

// logRecordHolding finds the shard log row whose record holds marker (a
// plain record: the test's appends are small).
func logRecordHolding(t *testing.T, session *gocql.Session, marker string) (shard int, segment, seq int64, rec []byte) {
	t.Helper()
	iter := session.Query(`SELECT shard, segment, seq, record FROM shard_log`).Iter()
	for iter.Scan(&shard, &segment, &seq, &rec) {
		if bytes.Contains(rec, []byte(marker)) {
			break
		}
		rec = nil
	}
	if err := iter.Close(); err != nil || rec == nil {
		t.Fatalf("no log record holds %s (%v)", marker, err)
	}
	return shard, segment, seq, rec
}
