package httpapi_test

import (
	"net/http"
	"testing"
)

// TestHeadDraining: on a server shutting down, a HEAD of a live
// subscription, a stream's NDJSON replay or a feed's NDJSON read answers
// as its GET does, 503 unavailable (the client is to go to another
// instance), not 200: the HEAD answered once the request was checked,
// whatever the GET would have answered. A replay of a stream without
// events is still its GET's 404.
func TestHeadDraining(t *testing.T) {
	ts := MustFeedServer(t, nil)
	ts.MustAppend(t, "headdrain-1", 1)
	ts.API.Drain()
	ndjson := "application/x-ndjson"
	for _, tc := range []struct{ path, accept string }{
		{"/v1/streams/headdrain-1/subscribe", ""},
		{"/v1/feeds/all/subscribe", ""},
		{"/v1/streams/headdrain-1/events", ndjson},
		{"/v1/feeds/all", ndjson},
	} {
		var h []string
		if tc.accept != "" {
			h = []string{"Accept", tc.accept}
		}
		MustProblem(t, ts.Do(t, "GET", tc.path, nil, h...), http.StatusServiceUnavailable, "unavailable")
		MustProblemHead(t, ts.Do(t, "HEAD", tc.path, nil, h...), http.StatusServiceUnavailable)
	}
	MustProblem(t, ts.Do(t, "GET", "/v1/streams/nobody-1/events", nil, "Accept", ndjson), http.StatusNotFound, "stream_not_found")
	MustProblemHead(t, ts.Do(t, "HEAD", "/v1/streams/nobody-1/events", nil, "Accept", ndjson), http.StatusNotFound)
}
