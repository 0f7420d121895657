package httpapi_test

import (
	"net/http"
	"testing"
	"unicode/utf8"
)

// TestSnapshotInvalidUTF8: a snapshot state with invalid UTF-8 in a
// string (json.Valid does not look at encodings) was stored, and every
// later state load of the stream and GET .../snapshots/latest served
// bytes that are not JSON text (RFC 8259: UTF-8), which strict clients
// refuse, where the same bytes in an event's data are refused at the
// append. Such a state is now invalid_json at the PUT.
func TestSnapshotInvalidUTF8(t *testing.T) {
	ts := MustServer(t, nil)
	ts.MustAppend(t, "snap-utf8", 1)
	r := ts.Do(t, "PUT", "/v1/streams/snap-utf8/snapshots/1", []byte("{\"name\":\"\xff\xfe\"}"), "Content-Type", "application/json")
	if r.Status == http.StatusCreated {
		st := ts.Do(t, "GET", "/v1/streams/snap-utf8/state", nil)
		t.Fatalf("stored; the state load then answers %d with valid UTF-8 %v: %q", st.Status, utf8.Valid(st.Body), st.Body)
	}
	MustProblem(t, r, http.StatusBadRequest, "invalid_json")
}
