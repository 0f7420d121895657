package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/internal/record"
)

// storedCell is a stream row's record cell and its write timestamp.
type storedCell struct {
	first int64
	body  []byte
	wt    int64
}

func mustCell(t *testing.T, session *gocql.Session, stream string, last int64) storedCell {
	t.Helper()
	var c storedCell
	if err := session.Query(`SELECT first_version, record, WRITETIME(record) FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = ?`,
		stream, last).Scan(&c.first, &c.body, &c.wt); err != nil {
		t.Fatalf("%s@%d: %v", stream, last, err)
	}
	return c
}

// corruptRow rewrites the row's record with one byte changed after mark,
// as TestVerifyCommand does (a disk's error).
func corruptRow(t *testing.T, session *gocql.Session, stream string, last int64, mark string) {
	t.Helper()
	c := mustCell(t, session, stream, last)
	mustExec(t, session, `UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = ? AND bucket = 0 AND last_version = ?`,
		c.wt+1, flipIn(t, c.body, mark), stream, last)
}

func mustEvents(t *testing.T, store *shardstore.Store, stream string) ([]log.RecordedEvent, error) {
	t.Helper()
	var out []log.RecordedEvent
	err := store.ReadStream(context.Background(), log.ReadRange{Stream: log.StreamID(stream), From: 1}, func(e *log.RecordedEvent) error {
		c := *e
		c.Data, c.Metadata = append(json.RawMessage(nil), e.Data...), append(json.RawMessage(nil), e.Metadata...)
		out = append(out, c)
		return nil
	})
	return out, err
}

func sameEvents(a, b []log.RecordedEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Stream != y.Stream || x.ID != y.ID || x.Type != y.Type || x.Version != y.Version || !x.Time.Equal(y.Time) ||
			string(x.Data) != string(y.Data) || string(x.Metadata) != string(y.Metadata) {
			return false
		}
	}
	return true
}

// repairLines runs verify --streams --repair --format=json and returns
// its exit code and its lines, each without its error (which names a
// checksum), keyed by stream.
func repairLines(t *testing.T, keyspace string, hosts []string) (int, map[string]map[string]any, string) {
	t.Helper()
	code, out, errOut := verifyCmd(t, keyspace, hosts, "--streams", "--repair", "--format=json")
	return code, jsonLines(t, out, "stream"), errOut
}

// verifyCmdLines runs verify with args (--format=json among them) and
// returns its exit code and its lines, each without its error, keyed by
// stream and last version.
func verifyCmdLines(t *testing.T, keyspace string, hosts []string, args ...string) (int, map[string]map[string]any, string) {
	t.Helper()
	code, out, errOut := verifyCmd(t, keyspace, hosts, args...)
	return code, jsonLines(t, out, "stream", "last_version"), errOut
}

// jsonLines are out's JSON lines, each without its error (which names a
// checksum), keyed by the values of keys joined with "@".
func jsonLines(t *testing.T, out string, keys ...string) map[string]map[string]any {
	t.Helper()
	lines := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var f map[string]any
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		delete(f, "error")
		var k []string
		for _, key := range keys {
			k = append(k, fmt.Sprint(f[key]))
		}
		lines[strings.Join(k, "@")] = f
	}
	return lines
}

// TestVerifyRepair: server verify --streams --repair writes a corrupt
// chunk row and a corrupt run row again from the shard log records they
// were filled from: each is printed as repaired, the streams read back
// exactly the events they held (ids, types, data, metadata, versions,
// times), verify then finds nothing, and a second repair finds nothing to
// do and writes nothing.
func TestVerifyRepair(t *testing.T) {
	// Appends wait in the tail until a read writes them: a read after
	// each append writes a row per append, one after twenty a run.
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) { so.FillDelay = time.Hour })
	o := opts.Cassandra
	session := cassandratest.Session(t, o)
	appendN(t, store, "r-chunk", "c", 3, true)
	appendN(t, store, "r-run", "r", 20, false)
	if c := mustCell(t, session, "r-run", 20); c.first != 1 || !record.IsRun(c.body) {
		t.Fatalf("r-run@20 holds %d..20, a run: %v; want a run of 1..20", c.first, record.IsRun(c.body))
	}
	want := map[string][]log.RecordedEvent{}
	for _, s := range []string{"r-chunk", "r-run"} {
		evs, err := mustEvents(t, store, s)
		if err != nil {
			t.Fatal(err)
		}
		want[s] = evs
	}

	corruptRow(t, session, "r-chunk", 2, `{"c":`)
	corruptRow(t, session, "r-run", 20, `{"r":`)
	for _, s := range []string{"r-chunk", "r-run"} {
		if _, err := mustEvents(t, shardstoretest.Reopen(t, opts), s); !errors.Is(err, log.ErrDataCorrupt) {
			t.Fatalf("%s read after the corruption: %v, want data corrupt", s, err)
		}
	}

	code, lines, errOut := repairLines(t, o.Keyspace, o.Hosts)
	wantLines := map[string]string{
		"r-chunk": `{"bucket":0,"first_version":2,"kind":"chunk","last_version":2,"repair":"repaired","stream":"r-chunk"}`,
		"r-run":   `{"bucket":0,"first_version":1,"kind":"run","last_version":20,"repair":"repaired","stream":"r-run"}`,
	}
	if code != 0 || len(lines) != len(wantLines) {
		t.Fatalf("repair: exit %d, lines %v; want 0 and %v: %s", code, lines, wantLines, errOut)
	}
	for s, w := range wantLines {
		if b, _ := json.Marshal(lines[s]); string(b) != w {
			t.Errorf("repair line %s, want %s", b, w)
		}
	}
	if !strings.Contains(errOut, "repaired=2") {
		t.Errorf("stderr lacks repaired=2: %s", errOut)
	}

	reader := shardstoretest.Reopen(t, opts) // reads nothing from the other stores' memory
	for s, w := range want {
		got, err := mustEvents(t, reader, s)
		if err != nil || !sameEvents(got, w) {
			t.Fatalf("%s after the repair: %v, %+v; want %+v", s, err, got, w)
		}
	}
	if code, out, errOut := verifyCmd(t, o.Keyspace, o.Hosts, "--streams"); code != 0 || out != "" {
		t.Fatalf("verify after the repair: exit %d, %q: %s", code, out, errOut)
	}

	before := map[string]storedCell{"r-chunk": mustCell(t, session, "r-chunk", 2), "r-run": mustCell(t, session, "r-run", 20)}
	if code, lines, errOut := repairLines(t, o.Keyspace, o.Hosts); code != 0 || len(lines) != 0 {
		t.Fatalf("second repair: exit %d, %v: %s", code, lines, errOut)
	}
	for s, b := range before {
		last := map[string]int64{"r-chunk": 2, "r-run": 20}[s]
		if a := mustCell(t, session, s, last); a.wt != b.wt || string(a.body) != string(b.body) {
			t.Errorf("%s: the second repair wrote the row again", s)
		}
	}
}

// appendN appends n 1-event appends to stream, with data {"<key>":i}
// (and metadata on the even ones); with each, a read that writes its row,
// else one read after the last.
func appendN(t *testing.T, store *shardstore.Store, stream, key string, n int, each bool) {
	t.Helper()
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		e := log.ProposedEvent{ID: uuid.New(), ClientID: i%3 != 0, Type: fmt.Sprintf("t%d", i%2), Data: json.RawMessage(fmt.Sprintf(`{"%s":%d}`, key, i))}
		if i%2 == 0 {
			e.Metadata = json.RawMessage(fmt.Sprintf(`{"m":%d}`, i))
		}
		if _, err := store.Append(ctx, log.AppendRequest{Stream: log.StreamID(stream), Expected: log.Any, Events: []log.ProposedEvent{e}}); err != nil {
			t.Fatal(err)
		}
		if each || i == n {
			if _, err := mustEvents(t, store, stream); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestVerifyRepairUnrepairable: a corrupt chunk row whose log record is
// corrupt too, or whose shard_seq names a row past its segment's
// last_seq (not committed: a repair from it would take events no reader
// ever served), is printed as unrepairable with the reason, exit 3, and
// nothing is written.
func TestVerifyRepairUnrepairable(t *testing.T) {
	store, opts := shardstoretest.NewStore(t, nil)
	o := opts.Cassandra
	session := cassandratest.Session(t, o)
	appendN(t, store, "u-log", "u", 3, true)
	appendN(t, store, "u-orphan", "o", 3, true)

	// u-log: its second event's row and log record both corrupt.
	corruptRow(t, session, "u-log", 2, `{"u":`)
	shard, segment, seq, rec := logRecordHolding(t, session, `{"u":2}`)
	mustExec(t, session, `UPDATE shard_log SET record = ? WHERE shard = ? AND segment = ? AND seq = ?`, flipIn(t, rec, `{"u":`), shard, segment, seq)

	// u-orphan: its second event's row names, as its shard_seq, a row
	// past the log's last_seq that holds another event of that version at
	// the row's time (as a commit that never applied could not have
	// written: the commit writes the row and last_seq in one batch).
	var (
		rowTime time.Time
		wt      int64
	)
	if err := session.Query(`SELECT time, WRITETIME(record) FROM stream_events WHERE stream = 'u-orphan' AND bucket = 0 AND last_version = 2`).Scan(&rowTime, &wt); err != nil {
		t.Fatal(err)
	}
	oshard, oseg, _, _ := logRecordHolding(t, session, `{"o":2}`)
	if oshard != partition.ShardOf("u-orphan", o.Shards) {
		t.Fatalf("u-orphan's record is in shard %d, not its shard %d", oshard, partition.ShardOf("u-orphan", o.Shards))
	}
	var lastSeq int64
	if err := session.Query(`SELECT last_seq FROM shard_log WHERE shard = ? AND segment = ? LIMIT 1`, oshard, oseg).Scan(&lastSeq); err != nil {
		t.Fatal(err)
	}
	fake := record.AppendRecord(nil, &record.Record{Appends: []record.Append{{Stream: "u-orphan", FirstVersion: 2, ClientIDs: true,
		Events: []record.Event{{ID: uuid.New(), Type: "t0", Data: []byte(`{"o":99}`)}}}}})
	mustExec(t, session, `INSERT INTO shard_log (shard, segment, seq, time, commit_id, record) VALUES (?, ?, ?, ?, ?, ?)`,
		oshard, oseg, lastSeq+1, rowTime, [16]byte(uuid.New()), fake)
	mustExec(t, session, `UPDATE stream_events USING TIMESTAMP ? SET shard_seq = ? WHERE stream = 'u-orphan' AND bucket = 0 AND last_version = 2`, wt, lastSeq+1)
	corruptRow(t, session, "u-orphan", 2, `{"o":`)

	before := map[string]storedCell{"u-log": mustCell(t, session, "u-log", 2), "u-orphan": mustCell(t, session, "u-orphan", 2)}
	code, lines, errOut := repairLines(t, o.Keyspace, o.Hosts)
	if code != exitCorrupt {
		t.Fatalf("exit %d, want %d: %v %s", code, exitCorrupt, lines, errOut)
	}
	for s, reason := range map[string]string{
		"u-log":    fmt.Sprintf("log record shard %d segment %d seq %d (read for versions 2..2) is corrupt", shard, segment, seq),
		"u-orphan": fmt.Sprintf("is not the row's (shard_seq %d,", lastSeq+1),
	} {
		f := lines[s]
		if f["repair"] != "unrepairable" || !strings.Contains(fmt.Sprint(f["repair_reason"]), reason) {
			t.Errorf("%s: %v; want unrepairable, a reason with %q", s, f, reason)
		}
		if a := mustCell(t, session, s, 2); a.wt != before[s].wt || string(a.body) != string(before[s].body) {
			t.Errorf("%s: the row was written", s)
		}
	}

	if code, _, _ := verifyCmd(t, o.Keyspace, o.Hosts, "--repair"); code != 2 {
		t.Errorf("--repair without --streams: exit %d, want 2", code)
	}
}

// TestVerifyRepairBlock: a compacted block (one run row of 256 chunks,
// compressed as one) found corrupt is written again from its 256 log
// records, and the stream reads back exactly as before.
func TestVerifyRepairBlock(t *testing.T) {
	store, opts := shardstoretest.NewStore(t, nil)
	o := opts.Cassandra
	session := cassandratest.Session(t, o)
	appendN(t, store, "b-block", "b", streams.BlockEvents+4, true)
	if _, err := streams.New(session, 100, time.Hour).Compact(context.Background(), "b-block", 0, 1, streams.BlockEvents); err != nil {
		t.Fatal(err)
	}
	if c := mustCell(t, session, "b-block", streams.BlockEvents); c.first != 1 || !record.IsBlock(c.body) {
		t.Fatalf("b-block@%d holds %d..: block %v; want a block of 1..%d", streams.BlockEvents, c.first, record.IsBlock(c.body), streams.BlockEvents)
	}
	want, err := mustEvents(t, store, "b-block")
	if err != nil {
		t.Fatal(err)
	}
	c := mustCell(t, session, "b-block", streams.BlockEvents)
	c.body[len(c.body)/2] ^= 0x01 // inside the compressed frame
	mustExec(t, session, `UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = 'b-block' AND bucket = 0 AND last_version = ?`,
		c.wt+1, c.body, streams.BlockEvents)

	code, lines, errOut := repairLines(t, o.Keyspace, o.Hosts)
	if f := lines["b-block"]; code != 0 || len(lines) != 1 || f["kind"] != "run" || f["repair"] != "repaired" {
		t.Fatalf("repair: exit %d, %v: %s", code, lines, errOut)
	}
	got, err := mustEvents(t, shardstoretest.Reopen(t, opts), "b-block")
	if err != nil || !sameEvents(got, want) {
		t.Fatalf("after the repair: %v, %d events; want the %d before", err, len(got), len(want))
	}
	if code, out, errOut := verifyCmd(t, o.Keyspace, o.Hosts, "--streams"); code != 0 || out != "" {
		t.Fatalf("verify after the repair: exit %d, %q: %s", code, out, errOut)
	}
}

// TestVerifyRepairCompactsBlock: a block holding repaired rows compacts
// again, as one block row, and the stream reads the same. A repaired
// row's write timestamp is one past its corrupt cell's, not rowTimestamp,
// and compaction once left such a block as its rows for good. Row 4 is
// corrupt at its own timestamp (it wins the tie: '4' changed to '5' is
// the greater value), so its repair lands one above it; row 256, the
// block's key, at a timestamp far above (as a write stamped with the
// wall clock would be), so its repair lands above the block row's usual
// timestamp: a block row written below it would lose at the key while
// its batch deleted rows 1..255.
func TestVerifyRepairCompactsBlock(t *testing.T) {
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) { so.NoBlocks = true })
	o := opts.Cassandra
	session := cassandratest.Session(t, o)
	appendN(t, store, "k-rows", "k", streams.BlockEvents, true)
	want, err := mustEvents(t, store, "k-rows")
	if err != nil {
		t.Fatal(err)
	}
	c := mustCell(t, session, "k-rows", 4)
	mustExec(t, session, `UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = 'k-rows' AND bucket = 0 AND last_version = 4`,
		c.wt, flipIn(t, c.body, `{"k":`))
	c = mustCell(t, session, "k-rows", streams.BlockEvents)
	mustExec(t, session, `UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = 'k-rows' AND bucket = 0 AND last_version = ?`,
		c.wt+time.Hour.Microseconds(), flipIn(t, c.body, `{"k":`), streams.BlockEvents)
	if _, err := mustEvents(t, shardstoretest.Reopen(t, opts), "k-rows"); !errors.Is(err, log.ErrDataCorrupt) {
		t.Fatalf("read after the corruption: %v, want data corrupt", err)
	}
	code, lines, errOut := verifyCmdLines(t, o.Keyspace, o.Hosts, "--streams", "--repair", "--format=json")
	if code != 0 || len(lines) != 2 || lines["k-rows@4"]["repair"] != "repaired" || lines[fmt.Sprintf("k-rows@%d", streams.BlockEvents)]["repair"] != "repaired" {
		t.Fatalf("repair: exit %d, %v: %s", code, lines, errOut)
	}
	n, err := streams.New(session, 100, time.Hour).Compact(context.Background(), "k-rows", 0, 1, streams.BlockEvents)
	if err != nil || n != 1 {
		t.Fatalf("compact: %d blocks, %v; want the block rewritten", n, err)
	}
	if c := mustCell(t, session, "k-rows", streams.BlockEvents); c.first != 1 || !record.IsBlock(c.body) {
		t.Fatalf("the block's key holds %d..%d (a block: %v), want a block of 1..%d", c.first, streams.BlockEvents, record.IsBlock(c.body), streams.BlockEvents)
	}
	var rows int
	if err := session.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = 'k-rows' AND bucket = 0`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d rows, %v; want the block row alone", rows, err)
	}
	got, err := mustEvents(t, shardstoretest.Reopen(t, opts), "k-rows")
	if err != nil || !sameEvents(got, want) {
		t.Fatalf("after the compaction: %v, %d events; want the %d before", err, len(got), len(want))
	}
	if code, out, errOut := verifyCmd(t, o.Keyspace, o.Hosts, "--streams"); code != 0 || out != "" {
		t.Fatalf("verify after the compaction: exit %d, %q: %s", code, out, errOut)
	}
}

// TestVerifyRepairFirstVersionAbove: row 256's first_version changed to
// 255 by a write stamped with the wall clock (an hour above the row).
// The repair confirms 255 (row 254 ends just before it) and writes the
// row as chunks 255..256 at its record cell's timestamp plus one, below
// that first_version cell, which stays. A compaction that judged rows by
// their record cell alone then wrote the block row under that cell: it
// read versions 255..256 over a block of 1..256 (every read refused it),
// and rows 1..255 were deleted.
func TestVerifyRepairFirstVersionAbove(t *testing.T) {
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) { so.NoBlocks = true })
	o := opts.Cassandra
	session := cassandratest.Session(t, o)
	appendN(t, store, "f-rows", "f", streams.BlockEvents, true)
	want, err := mustEvents(t, store, "f-rows")
	if err != nil {
		t.Fatal(err)
	}
	c := mustCell(t, session, "f-rows", streams.BlockEvents)
	mustExec(t, session, `UPDATE stream_events USING TIMESTAMP ? SET first_version = ? WHERE stream = 'f-rows' AND bucket = 0 AND last_version = ?`,
		c.wt+time.Hour.Microseconds(), streams.BlockEvents-1, streams.BlockEvents)
	code, lines, errOut := verifyCmdLines(t, o.Keyspace, o.Hosts, "--streams", "--repair", "--format=json")
	if code != 0 || len(lines) != 1 || lines[fmt.Sprintf("f-rows@%d", streams.BlockEvents)]["repair"] != "repaired" {
		t.Fatalf("repair: exit %d, %v: %s", code, lines, errOut)
	}
	n, err := streams.New(session, 100, time.Hour).Compact(context.Background(), "f-rows", 0, 1, streams.BlockEvents)
	if err != nil || n != 1 {
		t.Fatalf("compact: %d blocks, %v; want the block rewritten", n, err)
	}
	got, err := mustEvents(t, shardstoretest.Reopen(t, opts), "f-rows")
	if err != nil || !sameEvents(got, want) {
		t.Fatalf("after the compaction: %v, %d events; want the %d before", err, len(got), len(want))
	}
	if code, out, errOut := verifyCmd(t, o.Keyspace, o.Hosts, "--streams"); code != 0 || out != "" {
		t.Fatalf("verify after the compaction: exit %d, %q: %s", code, out, errOut)
	}
}

// TestVerifyRepairRate: --rate spaces the repair's reads too, the shard
// log rows read back above all, on the scan's limiter. Twenty corrupt
// chunk rows of a 60-event stream on one shard, each read back from its
// own shard_seq: at 400 rows a second, those reads alone take over two
// seconds (they were read at full speed, after a scan of some 120 rows).
func TestVerifyRepairRate(t *testing.T) {
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) { so.Cassandra.Shards = 1 })
	o := opts.Cassandra
	session := cassandratest.Session(t, o)
	const n, corrupt, rate = 60, 20, 400.0
	appendN(t, store, "q-rows", "q", n, true)
	seq := func(v int64) int64 {
		t.Helper()
		var s int64
		if err := session.Query(`SELECT shard_seq FROM stream_events WHERE stream = 'q-rows' AND bucket = 0 AND last_version = ?`, v).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Row v's repair reads every log row from seq 1 (the window is 256)
	// to its own: at least those from version 1's.
	s1, reads := seq(1), int64(0)
	for v := int64(n - corrupt + 1); v <= n; v++ {
		reads += seq(v) - s1 + 1
		corruptRow(t, session, "q-rows", v, `{"q":`)
	}
	start := time.Now()
	code, lines, errOut := verifyCmdLines(t, o.Keyspace, o.Hosts, "--streams", "--repair", "--format=json", fmt.Sprintf("--rate=%g", rate))
	elapsed := time.Since(start)
	if code != 0 || len(lines) != corrupt {
		t.Fatalf("repair: exit %d, %d lines; want 0 and %d: %s", code, len(lines), corrupt, errOut)
	}
	for _, f := range lines {
		if f["repair"] != "repaired" {
			t.Fatalf("repair: %v", f)
		}
	}
	if min := time.Duration(float64(reads-1) / rate * float64(time.Second)); elapsed < min {
		t.Fatalf("verify and repair took %v; the repair's %d log rows alone take %v at %g a second", elapsed, reads, min, rate)
	}
	t.Logf("%v for the scan and %d log rows read back (at least %v)", elapsed, reads, time.Duration(float64(reads-1)/rate*float64(time.Second)))
}
