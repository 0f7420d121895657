package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// bulkResults posts an NDJSON body to /v1/events and decodes the result lines.
func bulkResults(tb testing.TB, ts *testServer, body []byte, header ...string) []map[string]any {
	tb.Helper()
	r := ts.Do(tb, "POST", "/v1/events", body, append([]string{"Content-Type", "application/x-ndjson"}, header...)...)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-ndjson" {
		tb.Fatalf("bulk: %s (Content-Type %q)", r, r.Header.Get("Content-Type"))
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSuffix(r.Body, []byte("\n")), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			tb.Fatalf("result line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestBulkAppend(t *testing.T) {
	ts := MustServer(t, nil) // 32 KiB lines, 20 lines
	lines := []string{
		/* 1 */ `{"stream":"bulk-a","expected_version":"no_stream","events":[{"type":"t","data":1},{"type":"t","data":2}]}`,
		/* 2 */ `{"stream":"bulk-a","events":[{"type":"t","data":1}`, // broken JSON
		/* 3 */ ``, // blank: skipped
		/* 4 */ `{"stream":"-bad","events":[{"type":"t","data":1}]}`,
		/* 5 */ `{"stream":"bulk-b","expected_version":0,"events":[{"type":"t","data":"b"}]}`,
		/* 6 */ `{"stream":"bulk-a","expected_version":7,"events":[{"type":"t","data":3}]}`,
		/* 7 */ `{"stream":"bulk-a","events":[{"type":"t","data":"` + strings.Repeat("x", 40<<10) + `"}]}`, // line too long
		/* 8 */ `{"stream":"bulk-a","expected_version":2,"events":[{"type":"t","data":3}]}`,
		/* 9 */ `{"events":[{"type":"t","data":1}]}`, // no stream
		/* 10 */ `{"stream":"bulk-c","events":[{"type":"bad type","data":1}]}`,
	}
	res := bulkResults(t, ts, []byte(strings.Join(lines, "\n")+"\n"))
	want := []struct {
		line   int
		status int
		code   string
	}{
		{1, 201, ""}, {2, 400, "invalid_json"}, {4, 400, "invalid_stream_id"}, {5, 201, ""},
		{6, 409, "wrong_expected_version"}, {7, 413, "payload_too_large"}, {8, 201, ""},
		{9, 400, "invalid_stream_id"}, {10, 400, "invalid_event"},
	}
	if len(res) != len(want) {
		t.Fatalf("%d result lines, want %d: %v", len(res), len(want), res)
	}
	for i, w := range want {
		r := res[i]
		if r["line"] != float64(w.line) || r["status"] != float64(w.status) {
			t.Fatalf("result %d = %v, want line %d status %d", i, r, w.line, w.status)
		}
		if w.code != "" && r["code"] != w.code {
			t.Fatalf("result %d code %v, want %s", i, r["code"], w.code)
		}
		if w.code == "" && (r["code"] != nil || r["stream"] == nil) {
			t.Fatalf("result %d = %v, want a success", i, r)
		}
	}
	if res[0]["first_version"] != float64(1) || res[0]["last_version"] != float64(2) || res[6]["first_version"] != float64(3) {
		t.Fatalf("versions: %v / %v", res[0], res[6])
	}
	if res[4]["current_version"] != float64(2) {
		t.Fatalf("conflict line: %v", res[4])
	}
	ts.MustVersion(t, "bulk-a", 3)
	ts.MustVersion(t, "bulk-b", 1)
	ts.MustNotExist(t, "bulk-c")

	t.Run("Retry", func(t *testing.T) {
		id := "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e77"
		line := []byte(`{"stream":"bulk-d","events":[{"id":"` + id + `","type":"t","data":1}]}` + "\n")
		res := bulkResults(t, ts, append(append([]byte{}, line...), line...))
		if len(res) != 2 || res[0]["status"] != float64(201) || res[1]["status"] != float64(200) ||
			res[1]["duplicate"] != true || res[0]["first_version"] != res[1]["first_version"] {
			t.Fatalf("retry within one bulk: %v", res)
		}
		ts.MustVersion(t, "bulk-d", 1)
	})
	t.Run("Gzip", func(t *testing.T) {
		res := bulkResults(t, ts, gz(t, []byte(`{"stream":"bulk-e","events":[{"type":"t","data":1}]}`)), "Content-Encoding", "gzip")
		if len(res) != 1 || res[0]["status"] != float64(201) {
			t.Fatalf("%v", res)
		}
	})
	t.Run("TooManyLines", func(t *testing.T) {
		var b strings.Builder
		for i := range 25 { // limit is 20
			fmt.Fprintf(&b, `{"stream":"bulk-f","events":[{"type":"t","data":%d}]}`+"\n", i)
		}
		res := bulkResults(t, ts, []byte(b.String()))
		if len(res) != 21 {
			t.Fatalf("%d result lines, want 20 results and one problem", len(res))
		}
		if last := res[20]; last["status"] != float64(413) || last["code"] != "payload_too_large" || last["line"] != float64(21) {
			t.Fatalf("last result %v", last)
		}
		ts.MustVersion(t, "bulk-f", 20)
	})
	t.Run("GzipBomb", func(t *testing.T) {
		// One endless line inside a compressed body: reported as too long,
		// the request ends when the body exceeds lines x line size.
		bomb := gz(t, bytes.Repeat([]byte("x"), 64<<20))
		res := bulkResults(t, ts, bomb, "Content-Encoding", "gzip")
		if len(res) == 0 || res[0]["code"] != "payload_too_large" {
			t.Fatalf("%v", res)
		}
	})
}
