package httpapi_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gz(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func zst(tb testing.TB, b []byte) []byte {
	tb.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// bigAppend is a valid append body of about n bytes (one event per 8 KiB).
func bigAppend(n int) []byte {
	var evs []string
	for size := 0; size < n; size += 8 << 10 {
		evs = append(evs, fmt.Sprintf(`{"type":"t","data":"%s"}`, strings.Repeat("x", 8<<10)))
	}
	return []byte(`{"events":[` + strings.Join(evs, ",") + `]}`)
}

// TestErrorCodes produces every problem code from a real request against
// the real store, and checks that rejected writes wrote nothing.
func TestErrorCodes(t *testing.T) {
	ts := MustServer(t, nil)
	ts.MustAppend(t, "acct-1", 2) // versions 1..2

	t.Run("InvalidJSON", func(t *testing.T) {
		MustProblem(t, ts.Append(t, "ij-1", `{"events": [`), 400, "invalid_json")
		MustProblem(t, ts.Append(t, "ij-1", `{"events":[{"type":"t","data":1}],"extra":true}`), 400, "invalid_json")
		MustProblem(t, ts.Append(t, "ij-1", `{"events":[{"type":"t","data":1,"version":7}]}`), 400, "invalid_json")
		r := ts.Do(t, "PUT", "/v1/streams/acct-1/snapshots/1", []byte(`{not json`), "Content-Type", "application/json")
		MustProblem(t, r, 400, "invalid_json")
		ts.MustNotExist(t, "ij-1")
	})
	t.Run("InvalidStreamID", func(t *testing.T) {
		MustProblem(t, ts.Append(t, "-starts-with-dash", `{"events":[{"type":"t","data":1}]}`), 400, "invalid_stream_id")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/"+strings.Repeat("a", 201)+"/events", nil), 400, "invalid_stream_id")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/a%2Fb", nil), 400, "invalid_stream_id")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/has%20space/state", nil), 400, "invalid_stream_id")
	})
	t.Run("InvalidEvent", func(t *testing.T) {
		MustProblem(t, ts.Append(t, "ie-1", `{"events":[{"type":"has space","data":1}]}`), 400, "invalid_event")
		MustProblem(t, ts.Append(t, "ie-1", `{"events":[{"type":"t","data":1,"metadata":[1]}]}`), 400, "invalid_event")
		MustProblem(t, ts.Append(t, "ie-1", `{"events":[{"type":"t"}]}`), 400, "invalid_event")
		MustProblem(t, ts.Append(t, "ie-1", `{"events":[]}`), 400, "invalid_event")
		MustProblem(t, ts.Append(t, "ie-1", `{"events":[{"id":"not-a-uuid","type":"t","data":1}]}`), 400, "invalid_event")
		id := "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01"
		MustProblem(t, ts.Append(t, "ie-1", `{"events":[{"id":"`+id+`","type":"t","data":1},{"id":"`+id+`","type":"t","data":2}]}`), 400, "invalid_event")
		MustProblem(t, ts.Append(t, "ie-1", `{"expected_version":"latest","events":[{"type":"t","data":1}]}`), 400, "invalid_expected_version")
		ts.MustNotExist(t, "ie-1")
	})
	t.Run("UnsupportedMediaType", func(t *testing.T) {
		body := []byte(`{"events":[{"type":"t","data":1}]}`)
		MustProblem(t, ts.Do(t, "POST", "/v1/streams/um-1/events", body, "Content-Type", "text/plain"), 415, "unsupported_media_type")
		MustProblem(t, ts.Do(t, "POST", "/v1/streams/um-1/events", body), 415, "unsupported_media_type")
		MustProblem(t, ts.Do(t, "POST", "/v1/streams/um-1/events", body, "Content-Type", "application/json", "Content-Encoding", "br"), 415, "unsupported_media_type")
		MustProblem(t, ts.Do(t, "POST", "/v1/events", body, "Content-Type", "application/json"), 415, "unsupported_media_type")
		MustProblem(t, ts.Do(t, "PUT", "/v1/streams/acct-1/snapshots/1", []byte(`{}`), "Content-Type", "text/plain"), 415, "unsupported_media_type")
		ts.MustNotExist(t, "um-1")
	})
	t.Run("PayloadTooLarge", func(t *testing.T) {
		big := bigAppend(300 << 10) // over the 256 KiB body limit
		MustProblem(t, ts.Do(t, "POST", "/v1/streams/pl-1/events", big, "Content-Type", "application/json"), 413, "payload_too_large")
		ts.MustNotExist(t, "pl-1")
	})
	t.Run("PayloadTooLargeGzipBomb", func(t *testing.T) {
		// 64 MiB of whitespace inside a valid-looking body: ~64 KiB on the wire.
		bomb := gz(t, append(append([]byte(`{"events":[{"type":"t","data":1}]`), bytes.Repeat([]byte(" "), 64<<20)...), '}'))
		if len(bomb) > 256<<10 {
			t.Fatalf("bomb is %d bytes compressed; must be under the limit to test decompression", len(bomb))
		}
		r := ts.Do(t, "POST", "/v1/streams/pl-2/events", bomb, "Content-Type", "application/json", "Content-Encoding", "gzip")
		MustProblem(t, r, 413, "payload_too_large")
		ts.MustNotExist(t, "pl-2")
	})
	t.Run("PayloadTooLargeZstd", func(t *testing.T) {
		big := bigAppend(300 << 10)
		body := zst(t, big)
		if len(body) > 256<<10 {
			t.Fatalf("zstd body is %d bytes; must be under the limit", len(body))
		}
		r := ts.Do(t, "POST", "/v1/streams/pl-3/events", body, "Content-Type", "application/json", "Content-Encoding", "zstd")
		MustProblem(t, r, 413, "payload_too_large")
		ts.MustNotExist(t, "pl-3")
	})
	t.Run("LimitsTooManyEventsEventTooLarge", func(t *testing.T) {
		var evs []string
		for range testLimits.MaxEventsPerAppend + 1 {
			evs = append(evs, `{"type":"t","data":1}`)
		}
		MustProblem(t, ts.Append(t, "pl-4", `{"events":[`+strings.Join(evs, ",")+`]}`), 413, "too_many_events")
		MustProblem(t, ts.Append(t, "pl-4", `{"events":[{"type":"t","data":"`+strings.Repeat("x", testLimits.MaxEventBytes)+`"}]}`), 413, "event_too_large")
		ts.MustNotExist(t, "pl-4")
	})
	t.Run("InvalidEncoding", func(t *testing.T) {
		body := gz(t, []byte(`{"events":[{"type":"t","data":1}]}`))
		body[len(body)-6] ^= 0xff // corrupt the CRC
		r := ts.Do(t, "POST", "/v1/streams/enc-1/events", body, "Content-Type", "application/json", "Content-Encoding", "gzip")
		MustProblem(t, r, 400, "invalid_encoding")
		ts.MustNotExist(t, "enc-1")
	})
	t.Run("StreamNotFound", func(t *testing.T) {
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/nobody-1", nil), 404, "stream_not_found")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/nobody-1/events", nil), 404, "stream_not_found")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/nobody-1/events", nil, "Accept", "application/x-ndjson"), 404, "stream_not_found")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/nobody-1/state", nil), 404, "stream_not_found")
	})
	t.Run("SnapshotNotFound", func(t *testing.T) {
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/snapshots/latest", nil), 404, "snapshot_not_found")
	})
	t.Run("WrongExpectedVersion", func(t *testing.T) {
		p := MustProblem(t, ts.Append(t, "acct-1", `{"expected_version":5,"events":[{"type":"t","data":1}]}`), 409, "wrong_expected_version")
		if p["current_version"] != float64(2) {
			t.Fatalf("current_version = %v, want 2", p["current_version"])
		}
		p = MustProblem(t, ts.Append(t, "acct-1", `{"expected_version":"no_stream","events":[{"type":"t","data":1}]}`), 409, "wrong_expected_version")
		if p["current_version"] != float64(2) {
			t.Fatalf("current_version = %v, want 2", p["current_version"])
		}
		p = MustProblem(t, ts.Append(t, "wev-new", `{"expected_version":"exists","events":[{"type":"t","data":1}]}`), 409, "wrong_expected_version")
		if p["current_version"] != float64(0) {
			t.Fatalf("current_version = %v, want 0", p["current_version"])
		}
		ts.MustVersion(t, "acct-1", 2)
		ts.MustNotExist(t, "wev-new")
	})
	t.Run("IdempotencyConflict", func(t *testing.T) {
		a, b, c := "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e0a", "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e0b", "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e0c"
		r := ts.Append(t, "idc-1", `{"expected_version":0,"events":[{"id":"`+a+`","type":"t","data":1},{"id":"`+b+`","type":"t","data":2}]}`)
		if r.Status != 201 {
			t.Fatal(r)
		}
		// Same id, different payload.
		MustProblem(t, ts.Append(t, "idc-1", `{"expected_version":0,"events":[{"id":"`+a+`","type":"t","data":99},{"id":"`+b+`","type":"t","data":2}]}`), 409, "idempotency_conflict")
		// Only some of the stored ids.
		MustProblem(t, ts.Append(t, "idc-1", `{"expected_version":0,"events":[{"id":"`+a+`","type":"t","data":1},{"id":"`+c+`","type":"t","data":3}]}`), 409, "idempotency_conflict")
		ts.MustVersion(t, "idc-1", 2)
	})
	t.Run("SnapshotVersion422", func(t *testing.T) {
		for _, v := range []string{"3", "0", "-1"} { // head is 2
			r := ts.Do(t, "PUT", "/v1/streams/acct-1/snapshots/"+v, []byte(`{"n":1}`), "Content-Type", "application/json")
			MustProblem(t, r, 422, "invalid_snapshot_version")
		}
		MustProblem(t, ts.Do(t, "PUT", "/v1/streams/acct-1/snapshots/x", []byte(`{}`), "Content-Type", "application/json"), 400, "invalid_request")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/snapshots/latest", nil), 404, "snapshot_not_found")
	})
	t.Run("InvalidRequest", func(t *testing.T) {
		for _, q := range []string{"from=0", "limit=0", "to=1&from=2", "direction=up", "limit=x"} {
			MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/events?"+q, nil), 400, "invalid_request")
		}
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/state?at=3", nil), 400, "invalid_version")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/snapshots/latest?max_version=-1", nil), 400, "invalid_request")
	})
	t.Run("NotFoundAndMethodNotAllowed", func(t *testing.T) {
		MustProblem(t, ts.Do(t, "GET", "/v2/streams", nil), 404, "not_found")
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/acct-1/nothing", nil), 404, "not_found")
		r := ts.Do(t, "DELETE", "/v1/streams/acct-1", nil)
		MustProblem(t, r, 405, "method_not_allowed")
		if !strings.Contains(r.Header.Get("Allow"), "GET") {
			t.Fatalf("Allow = %q", r.Header.Get("Allow"))
		}
	})
	t.Run("NoDriverTextLeaks", func(t *testing.T) {
		// No response above carried driver internals; spot-check one more.
		r := ts.Append(t, "acct-1", `{"expected_version":1,"events":[{"type":"t","data":1}]}`)
		for _, s := range []string{"gocql", "cql", "Cassandra", "keyspace"} {
			if bytes.Contains(r.Body, []byte(s)) {
				t.Fatalf("response mentions %q: %s", s, r.Body)
			}
		}
	})
}
