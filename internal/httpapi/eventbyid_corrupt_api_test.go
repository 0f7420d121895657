package httpapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// TestEventByIDCorruptOutsideScope: a lookup by id whose log record or
// stream row is corrupt tells a key scoped to some streams nothing of an id
// in a stream it may not read: 404 event_not_found, or the event of a
// stream it may read that holds the id too, as when the corrupt row is
// absent. A key that may read every stream gets 500 data_corrupt naming
// the log record; a key that may read the stream gets 500 data_corrupt
// naming its corrupt stream row. A corrupt log record does not say which
// streams it holds, so a scoped key cannot be told it holds one of its
// own: 404 for it too (README, "What a finding means"). Every lookup that
// meets the corrupt record counts it in eventlog_data_corrupt_total, the
// scoped ones that leave it out too (they were not counted).
func TestEventByIDCorruptOutsideScope(t *testing.T) {
	as := mustShardAuthServer(t)
	admin := as.MustToken(t, "admin", 0, "admin")
	all := as.MustToken(t, "all", 0, "read:*")
	pub := as.MustToken(t, "pub", 0, "read:pub-*")
	none := as.MustToken(t, "none", 0, "read:none-*")
	secret := as.MustToken(t, "secret", 0, "read:secret-*")
	session := cassandratest.Session(t, as.Opts.Cassandra)
	// appendAt appends one event with id and data {"i":i} to stream, and
	// reads the stream, which writes its row and index rows.
	appendAt := func(t *testing.T, stream string, id uuid.UUID, i string) {
		t.Helper()
		body := `{"events":[{"id":"` + id.String() + `","type":"t","data":{"i":` + i + `}}]}`
		if r := as.As(t, admin, "POST", "/v1/streams/"+stream+"/events", body, "Content-Type", jsonCT); r.Status != http.StatusCreated {
			t.Fatalf("append to %s: %s", stream, r)
		}
		if r := as.As(t, admin, "GET", "/v1/streams/"+stream+"/events", ""); r.Status != http.StatusOK {
			t.Fatalf("read %s: %s", stream, r)
		}
	}
	// flip turns {"i":0} into {"i":9} in b: the checksum catches it.
	flip := func(t *testing.T, b []byte) {
		t.Helper()
		i := bytes.LastIndex(b, []byte(`{"i":0}`))
		if i < 0 {
			t.Fatalf("the event's data is not in the row (%x)", b)
		}
		b[i+len(`{"i":`)] = '9'
	}
	get := func(t *testing.T, key string, id uuid.UUID) response {
		t.Helper()
		return as.As(t, key, "GET", "/v1/events/"+id.String(), "")
	}
	mustCounted := func(t *testing.T, kind string, n int) {
		t.Helper()
		want := `eventlog_data_corrupt_total{kind="` + kind + `"} ` + itoa(int64(n))
		if m := as.As(t, admin, "GET", "/metrics", ""); !strings.Contains(string(m.Body), "\n"+want+"\n") {
			t.Errorf("/metrics (%d) has no line %q", m.Status, want)
		}
	}

	t.Run("LogRecord", func(t *testing.T) {
		id := uuid.Must(uuid.NewV7())
		appendAt(t, "secret-1", id, "0")
		var (
			shard        int
			segment, seq int64
			rec          []byte
			found        bool
		)
		iter := session.Query(`SELECT shard, segment, seq, record FROM shard_log`).Iter()
		for iter.Scan(&shard, &segment, &seq, &rec) {
			if rec != nil && bytes.Contains(rec, []byte("secret-1")) {
				found = true
				break
			}
		}
		if err := iter.Close(); err != nil || !found {
			t.Fatalf("no log record holds the append (%v)", err)
		}
		flip(t, rec)
		if err := session.Query(`UPDATE shard_log SET record = ? WHERE shard = ? AND segment = ? AND seq = ?`, rec, shard, segment, seq).Exec(); err != nil {
			t.Fatal(err)
		}
		where := "log record " + itoa(seq) + " of shard " + itoa(int64(shard))
		for name, key := range map[string]string{"Admin": admin, "ReadAll": all} {
			p := MustProblem(t, get(t, key, id), http.StatusInternalServerError, httpapi.CodeDataCorrupt)
			if d, _ := p["detail"].(string); !strings.Contains(d, where) {
				t.Errorf("%s: detail %q does not name %q", name, d, where)
			}
		}
		mustCounted(t, "log_record", 2)
		for name, key := range map[string]string{"OutOfScope": none, "InScope": secret} {
			if r := get(t, key, id); r.Status != http.StatusNotFound || r.JSON(t)["code"] != "event_not_found" {
				t.Errorf("%s: %s, want 404 event_not_found", name, r)
			}
		}
		mustCounted(t, "log_record", 4) // left out of both lookups, counted

		// The id in a stream the key may read, committed after: found, as
		// when the corrupt record's stream does not hold the id.
		appendAt(t, "pub-1", id, "1")
		if r := get(t, pub, id); r.Status != http.StatusOK || r.JSON(t)["stream"] != "pub-1" {
			t.Errorf("read:pub-*: %s, want pub-1's event", r)
		}
		// The corrupt record, committed first, was read first and left out.
		mustCounted(t, "log_record", 5)
	})

	t.Run("StreamRow", func(t *testing.T) {
		id := uuid.Must(uuid.NewV7())
		appendAt(t, "secret-2", id, "0")
		var (
			row []byte
			wt  int64
		)
		if err := session.Query(`SELECT record, WRITETIME(record) FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = 1`, "secret-2").
			Scan(&row, &wt); err != nil {
			t.Fatal(err)
		}
		flip(t, row)
		if err := session.Query(`UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = ? AND bucket = 0 AND last_version = 1`,
			wt+1, row, "secret-2").Exec(); err != nil {
			t.Fatal(err)
		}
		for name, key := range map[string]string{"InScope": secret, "ReadAll": all} {
			p := MustProblem(t, get(t, key, id), http.StatusInternalServerError, httpapi.CodeDataCorrupt)
			if d, _ := p["detail"].(string); !strings.Contains(d, "stream secret-2 versions 1..1") {
				t.Errorf("%s: detail %q does not name the row", name, d)
			}
		}
		MustProblem(t, get(t, pub, id), http.StatusNotFound, "event_not_found")
	})
}
