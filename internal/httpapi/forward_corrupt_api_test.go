package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/partition"
)

// TestForwardedAppendMeetsCorruptRow: an append forwarded to its shard's
// owner, whose idempotency check reads a corrupt row, is answered by the
// forwarding instance as the owner answers it: 500 data_corrupt naming the
// row, not 504 outcome_unknown (the owner refused it before committing
// anything). Nothing is appended, and the owner, which read the row, counts
// it in eventlog_data_corrupt_total.
func TestForwardedAppendMeetsCorruptRow(t *testing.T) {
	base := MustAuthServer(t, auth.Options{}, nil)
	root := base.MustToken(t, "root", 0, "admin")
	o := base.Opts
	a := httpInstance(t, o, nil)
	base.Store.Close()
	stream := ownedStream(t, a.Store, o.Cassandra.Shards, "fwdcorrupt")
	b := httpInstance(t, o, nil)
	for _, x := range []*authServer{a, b} {
		if err := x.Auth.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if slices.Contains(b.Store.Owned(), partition.ShardOf(stream, o.Cassandra.Shards)) {
		t.Skip("b took the stream's shard")
	}
	body := `{"events":[{"id":"0191e3a0-0000-7000-8000-0000000000c1","type":"t","data":{"i":0}}]}`
	if r := a.As(t, root, "POST", "/v1/streams/"+stream+"/events", body, "Content-Type", jsonCT); r.Status != http.StatusCreated {
		t.Fatalf("append through the owner: %s", r)
	}
	if r := a.As(t, root, "GET", "/v1/streams/"+stream+"/events", ""); r.Status != http.StatusOK {
		t.Fatalf("read before the corruption: %s", r) // and its chunk row is written
	}
	session := cassandratest.Session(t, o.Cassandra)
	var (
		row []byte
		wt  int64
	)
	if err := session.Query(`SELECT record, WRITETIME(record) FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = 1`, stream).
		Scan(&row, &wt); err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(string(row), `{"i":0}`)
	if i < 0 {
		t.Fatalf("the event's data is not in the row (%x)", row)
	}
	row[i+len(`{"i":`)] = '9' // the checksum catches it, the decoding would not
	if err := session.Query(`UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = ? AND bucket = 0 AND last_version = 1`,
		wt+1, row, stream).Exec(); err != nil {
		t.Fatal(err)
	}

	// The retry through b: the owner's check of its id reads the row.
	p := MustProblem(t, b.As(t, root, "POST", "/v1/streams/"+stream+"/events", body, "Content-Type", jsonCT),
		http.StatusInternalServerError, httpapi.CodeDataCorrupt)
	want := "stream " + stream + " versions 1..1"
	if d, _ := p["detail"].(string); !strings.Contains(d, want) {
		t.Errorf("detail %q does not name the row (%q)", d, want)
	}
	if m := a.As(t, root, "GET", "/metrics", ""); !strings.Contains(string(m.Body), "\n"+`eventlog_data_corrupt_total{kind="chunk"} 1`+"\n") {
		t.Errorf("the owner's /metrics (%d) does not count the corrupt row once", m.Status)
	}
	// The same retry at the owner: the same problem.
	q := MustProblem(t, a.As(t, root, "POST", "/v1/streams/"+stream+"/events", body, "Content-Type", jsonCT),
		http.StatusInternalServerError, httpapi.CodeDataCorrupt)
	if p["detail"] != q["detail"] {
		t.Errorf("through the forwarding instance: detail %q; at the owner: %q", p["detail"], q["detail"])
	}
	r := a.As(t, root, "GET", "/v1/streams/"+stream, "")
	if v := r.JSON(t)["version"]; r.Status != http.StatusOK || v != 1.0 {
		t.Errorf("stream after the refused retries: %s, want version 1", r)
	}
}
