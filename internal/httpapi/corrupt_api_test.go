package httpapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// lockedBuffer is a log destination the server's goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON log lines at level with every attribute of want.
func (l *lockedBuffer) lines(tb testing.TB, level string, want map[string]any) int {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["level"] != level {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && m[k] == v
		}
		if ok {
			n++
		}
	}
	return n
}

// TestReadCorruptRowIsDataCorrupt: a stream row or a shard log record
// whose bytes changed in Cassandra after they were written (a disk's
// error) is answered 500 data_corrupt naming the row (the stream and its
// versions, or the shard and the record's seq), not the generic
// internal; the server logs the row's key at error level once and counts
// the read in eventlog_data_corrupt_total by kind.
func TestReadCorruptRowIsDataCorrupt(t *testing.T) {
	logs := &lockedBuffer{}
	ts := MustServer(t, func(c *httpapi.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	session := cassandratest.Session(t, ts.Opts.Cassandra)
	// flip changes the last byte of the event's data in b ({"i":0} → {"i":9}),
	// which a checksum catches and the event's decoding would not.
	flip := func(tb testing.TB, b []byte) {
		tb.Helper()
		i := bytes.LastIndex(b, []byte(`{"i":0}`))
		if i < 0 {
			tb.Fatalf("the event's data is not in the row (%x)", b)
		}
		b[i+len(`{"i":`)] = '9'
	}

	t.Run("StreamRow", func(t *testing.T) {
		const stream = "corrupt-row"
		ts.MustAppend(t, stream, 1)
		if r := ts.Do(t, "GET", "/v1/streams/"+stream+"/events", nil); r.Status != http.StatusOK {
			t.Fatalf("read before the corruption: %s", r) // and its chunk row is written
		}
		var (
			row []byte
			ts0 int64
		)
		if err := session.Query(`SELECT record, WRITETIME(record) FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = 1`, stream).
			Scan(&row, &ts0); err != nil {
			t.Fatal(err)
		}
		flip(t, row)
		if err := session.Query(`UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = ? AND bucket = 0 AND last_version = 1`,
			ts0+1, row, stream).Exec(); err != nil {
			t.Fatal(err)
		}
		for _, h := range [][]string{nil, {"Accept", "application/x-ndjson"}} {
			p := MustProblem(t, ts.Do(t, "GET", "/v1/streams/"+stream+"/events", nil, h...), http.StatusInternalServerError, httpapi.CodeDataCorrupt)
			if d, _ := p["detail"].(string); !strings.Contains(d, "stream corrupt-row versions 1..1") {
				t.Errorf("detail %q does not name the row", d)
			}
		}
		if n := logs.lines(t, "ERROR", map[string]any{"corrupt_kind": "chunk", "stream": stream, "bucket": 0.0, "last_version": 1.0}); n != 2 {
			t.Errorf("%d error lines with the row's key, want 2 (one a read)", n)
		}
		mustMetric(t, ts, `eventlog_data_corrupt_total{kind="chunk"} 2`)
	})

	t.Run("LogRecord", func(t *testing.T) {
		const stream = "corrupt-log"
		ts.MustAppend(t, stream, 1)
		var (
			shard             int
			segment, seq, hit int64
			rec               []byte
		)
		iter := session.Query(`SELECT shard, segment, seq, record FROM shard_log`).Iter()
		for iter.Scan(&shard, &segment, &seq, &rec) {
			if rec != nil && bytes.Contains(rec, []byte(stream)) {
				hit = seq
				break
			}
		}
		iter.Close()
		if hit == 0 {
			t.Fatal("no log record holds the append")
		}
		flip(t, rec)
		if err := session.Query(`UPDATE shard_log SET record = ? WHERE shard = ? AND segment = ? AND seq = ?`, rec, shard, segment, seq).Exec(); err != nil {
			t.Fatal(err)
		}
		p := MustProblem(t, ts.Do(t, "GET", "/v1/feeds/all", nil), http.StatusInternalServerError, httpapi.CodeDataCorrupt)
		want := "log record " + itoa(seq) + " of shard " + itoa(int64(shard))
		if d, _ := p["detail"].(string); !strings.Contains(d, want) {
			t.Errorf("detail %q does not name %q", d, want)
		}
		if n := logs.lines(t, "ERROR", map[string]any{"corrupt_kind": "log_record", "shard": float64(shard), "segment": float64(segment), "seq": float64(seq)}); n != 1 {
			t.Errorf("%d error lines with the record's key, want 1", n)
		}
		mustMetric(t, ts, `eventlog_data_corrupt_total{kind="log_record"} 1`)
	})
}

// TestReadCorruptSnapshotLoggedOnce: a stored snapshot that fails its
// check is 500 snapshot_corrupt naming the stream and version, counted
// (kind snapshot) and logged at error level once with its key (the store
// logged a line of its own besides the request's); stream info, which
// leaves it out, logs it.
func TestReadCorruptSnapshotLoggedOnce(t *testing.T) {
	// The store and the HTTP layer log to one place, as in cmd/server.
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Limits, so.Cassandra.Registerer, so.Cassandra.Logger = testLimits, reg, logger
	})
	ts := startServer(t, store, opts, reg, nil, func(c *httpapi.Config) { c.Logger = logger })
	session := cassandratest.Session(t, ts.Opts.Cassandra)
	const stream = "corrupt-snap"
	ts.MustAppend(t, stream, 1)
	if r := ts.Do(t, "PUT", "/v1/streams/"+stream+"/snapshots/1", []byte(`{"n":1}`), "Content-Type", "application/json"); r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("put snapshot: %s", r)
	}
	var (
		data []byte
		wt   int64
	)
	if err := session.Query(`SELECT data, WRITETIME(data) FROM snapshots WHERE stream = ? AND version = 1`, stream).Scan(&data, &wt); err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0x01 // its checksum
	if err := session.Query(`UPDATE snapshots USING TIMESTAMP ? SET data = ? WHERE stream = ? AND version = 1`, wt+1, data, stream).Exec(); err != nil {
		t.Fatal(err)
	}
	p := MustProblem(t, ts.Do(t, "GET", "/v1/streams/"+stream+"/snapshots/latest", nil), http.StatusInternalServerError, httpapi.CodeSnapshotCorrupt)
	if d, _ := p["detail"].(string); !strings.Contains(d, "snapshot of stream corrupt-snap at version 1") {
		t.Errorf("detail %q does not name the snapshot", d)
	}
	key := map[string]any{"corrupt_kind": "snapshot", "stream": stream, "last_version": 1.0}
	if n, all := logs.lines(t, "ERROR", key), logs.lines(t, "ERROR", map[string]any{"stream": stream}); n != 1 || all != 1 {
		t.Errorf("%d error lines with the snapshot's key, %d naming its stream; want one", n, all)
	}
	mustMetric(t, ts, `eventlog_data_corrupt_total{kind="snapshot"} 1`)
	if r := ts.Do(t, "GET", "/v1/streams/"+stream, nil); r.Status != http.StatusOK || r.JSON(t)["latest_snapshot_version"] != nil {
		t.Fatalf("stream info: %s, want 200 without the corrupt snapshot", r)
	}
	if n, all := logs.lines(t, "ERROR", key), logs.lines(t, "ERROR", map[string]any{"stream": stream}); n != 2 || all != 2 {
		t.Errorf("after stream info, %d error lines with the snapshot's key, %d naming its stream; want 2", n, all)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// mustMetric checks /metrics has the line want.
func mustMetric(tb testing.TB, ts *testServer, want string) {
	tb.Helper()
	r := ts.Do(tb, "GET", "/metrics", nil)
	if !strings.Contains(string(r.Body), "\n"+want+"\n") {
		tb.Errorf("/metrics has no line %q", want)
	}
}
