package httpapi_test

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// TestHeadReadsNoSnapshot: a HEAD of a state load or of an NDJSON replay
// reads no snapshot (README: "never an event or a snapshot"; head.go). Its
// check read the stream's info, which reads the stream's latest snapshot
// whole (up to MaxSnapshotBytes): a corrupt one is then logged by the
// store ("corrupt snapshot left out of stream info"), which a HEAD that
// reads none cannot do. (TestHeadRefusesAsGet's wrapper counts only the
// snapshot reads the HTTP layer makes itself, not the one inside Info.)
func TestHeadReadsNoSnapshot(t *testing.T) {
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Limits, so.Cassandra.Registerer, so.Cassandra.Logger = testLimits, reg, logger
	})
	ts := startServer(t, store, opts, reg, nil, func(c *httpapi.Config) { c.Logger = logger })
	session := cassandratest.Session(t, ts.Opts.Cassandra)
	const stream = "headsnap-1"
	ts.MustAppend(t, stream, 2)
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
	for _, tc := range []struct{ path, accept string }{
		{"/v1/streams/" + stream + "/state", ""},
		{"/v1/streams/" + stream + "/state?at=2", ""},
		{"/v1/streams/" + stream + "/events", "application/x-ndjson"},
	} {
		var h []string
		if tc.accept != "" {
			h = []string{"Accept", tc.accept}
		}
		if r := ts.Do(t, "HEAD", tc.path, nil, h...); r.Status != http.StatusOK {
			t.Fatalf("HEAD %s: %d", tc.path, r.Status)
		}
		if n := logs.lines(t, "ERROR", map[string]any{"corrupt_kind": "snapshot", "stream": stream}); n != 0 {
			t.Fatalf("HEAD %s read the stream's snapshot (%d error lines naming it)", tc.path, n)
		}
	}
}
