package httpapi_test

import "testing"

// TestHeadDrainingEmptyReplay: on a server shutting down, an NDJSON
// replay of a range that holds no event (past the stream's head) has no
// first event to end at: its GET answers 200 with an empty body, so its
// HEAD answers 200 too, not the 503 of a GET that ends at its first event
// (head.go: "the status its GET starts with").
func TestHeadDrainingEmptyReplay(t *testing.T) {
	ts := MustFeedServer(t, nil)
	ts.MustAppend(t, "headdrainempty-1", 1)
	ts.API.Drain()
	ndjson := "application/x-ndjson"
	for _, path := range []string{
		"/v1/streams/headdrainempty-1/events?from=5",
		"/v1/streams/headdrainempty-1/events?from=2&until_time=2100-01-01T00:00:00Z",
	} {
		get := ts.Do(t, "GET", path, nil, "Accept", ndjson)
		head := ts.Do(t, "HEAD", path, nil, "Accept", ndjson)
		if head.Status != get.Status {
			t.Errorf("%s: HEAD %d, its GET %d (%q)", path, head.Status, get.Status, get.Body)
		}
	}
}

// TestHeadDrainingFeedAtEnd: on a server shutting down, an NDJSON feed
// read from the feed's end has no event to end at: its GET answers 200
// (empty, with its trailers), and so does its HEAD (it answered 503);
// a read with an event after its position is 503 both ways. (A category
// or type feed with no event of its own past a position short of the
// end is 503 to a HEAD, 200 to its GET: only the log rows tell.)
func TestHeadDrainingFeedAtEnd(t *testing.T) {
	ts := MustFeedServer(t, nil)
	ts.MustAppend(t, "headdrainend-1", 1)
	ts.API.Drain()
	// At the end, and before the appended event (the read's first event
	// is where the GET stops).
	for _, path := range []string{"/v1/feeds/all?from=now", "/v1/feeds/all"} {
		get := ts.Do(t, "GET", path, nil, "Accept", "application/x-ndjson")
		head := ts.Do(t, "HEAD", path, nil, "Accept", "application/x-ndjson")
		if head.Status != get.Status {
			t.Errorf("%s: HEAD %d, its GET %d (%q)", path, head.Status, get.Status, get.Body)
		}
	}
}
