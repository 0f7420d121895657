package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/eventlog/eventlog/internal/httpapi"
)

// TestRecordTraceparent: with Config.RecordTraceparent, an append's
// traceparent header is kept in its events' metadata (unless they carry
// one), and a retry with the same header is still a retry; without the
// option, or with a malformed header, nothing is added.
func TestRecordTraceparent(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ts := MustServer(t, func(c *httpapi.Config) { c.RecordTraceparent = true })
	body := `{"events":[
		{"id":"0190a1b2-0000-7000-8000-0000000000a1","type":"A","data":1},
		{"id":"0190a1b2-0000-7000-8000-0000000000a2","type":"B","data":2,"metadata":{"c":"x"}},
		{"id":"0190a1b2-0000-7000-8000-0000000000a3","type":"C","data":3,"metadata":{"traceparent":"mine"}},
		{"id":"0190a1b2-0000-7000-8000-0000000000a4","type":"D","data":4,"metadata":null},
		{"id":"0190a1b2-0000-7000-8000-0000000000a5","type":"E","data":5,"metadata":{}}]}`
	send := func(stream, header string) response {
		h := []string{"Content-Type", "application/json"}
		if header != "" {
			h = append(h, "Traceparent", header)
		}
		return ts.Do(t, "POST", "/v1/streams/"+stream+"/events", []byte(body), h...)
	}
	if r := send("tp-1", tp); r.Status != http.StatusCreated {
		t.Fatal(r)
	}
	if r := send("tp-1", tp); r.Status != http.StatusOK || r.JSON(t)["duplicate"] != true {
		t.Fatalf("retry: %s", r)
	}
	metas := func(stream string) []string {
		var out []string
		for _, e := range mustPage(t, ts.Do(t, "GET", "/v1/streams/"+stream+"/events", nil)).Events {
			out = append(out, string(e.Metadata))
		}
		return out
	}
	want := []string{`{"traceparent":"` + tp + `"}`, `{"traceparent":"` + tp + `","c":"x"}`, `{"traceparent":"mine"}`, `{"traceparent":"` + tp + `"}`, `{"traceparent":"` + tp + `"}`}
	got := metas("tp-1")
	for i := range want {
		if i >= len(got) || !sameJSON(got[i], want[i]) {
			t.Fatalf("metadata %q, want %q", got, want)
		}
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		stream := "tp-bad" + string(rune('a'+len(bad)%26))
		if r := send(stream, bad); r.Status != http.StatusCreated {
			t.Fatal(r)
		}
		if m := metas(stream); m[0] != "" || m[1] != `{"c":"x"}` {
			t.Fatalf("header %q recorded: %q", bad, m)
		}
	}
	off := MustServer(t, nil)
	r := off.Do(t, "POST", "/v1/streams/tp-off/events", []byte(body), "Content-Type", "application/json", "Traceparent", tp)
	if r.Status != http.StatusCreated {
		t.Fatal(r)
	}
	if e := mustPage(t, off.Do(t, "GET", "/v1/streams/tp-off/events", nil)).Events; len(e[0].Metadata) != 0 {
		t.Fatalf("recorded while off: %s", e[0].Metadata)
	}
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
