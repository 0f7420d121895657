package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// TestHeadDrainingFeedSubscriptionBadPosition: on a server shutting down,
// a feed subscription whose position the store would refuse is refused
// by its GET with 503 unavailable (the slot is asked for before the first
// page is read, acquireSubscription), so its HEAD answers 503 too, not
// the 400 invalid_position the GET never gets to (and without reading the
// logs' statics on a server that is going away).
func TestHeadDrainingFeedSubscriptionBadPosition(t *testing.T) {
	ts := MustFeedServer(t, nil)
	ts.MustAppend(t, "headdrainpos-1", 3)
	var fp feedPageJSON
	if r := ts.Do(t, "GET", "/v1/feeds/all?limit=1", nil); r.Status != http.StatusOK || json.Unmarshal(r.Body, &fp) != nil || fp.Next == "" {
		t.Fatalf("feed page: %s", r)
	}
	altered := []byte(fp.Next)
	altered[len(altered)/2] ^= 1
	ts.API.Drain()
	path := "/v1/feeds/all/subscribe?from=" + url.QueryEscape(string(altered))
	for _, accept := range []string{"text/event-stream", "application/x-ndjson"} {
		get := ts.Do(t, "GET", path, nil, "Accept", accept)
		MustProblem(t, get, http.StatusServiceUnavailable, "unavailable")
		head := ts.Do(t, "HEAD", path, nil, "Accept", accept)
		if head.Status != get.Status {
			t.Errorf("%s: HEAD %d, its GET %d", accept, head.Status, get.Status)
		}
		if cl := head.Header.Get("Content-Length"); cl != strconv.Itoa(len(get.Body)) {
			t.Errorf("%s: HEAD Content-Length %q, the GET's problem %d bytes", accept, cl, len(get.Body))
		}
	}
}
