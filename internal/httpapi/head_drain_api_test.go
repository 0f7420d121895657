package httpapi_test

import (
	"net/http"
	"testing"
)

// TestHeadSubscribeDraining: on a server shutting down, a HEAD of a live
// subscription answers as its GET does, 503 unavailable (the client is
// to go to another instance), not 200: the HEAD answered once the
// request was checked, whatever the GET would have answered.
func TestHeadSubscribeDraining(t *testing.T) {
	ts := MustFeedServer(t, nil)
	ts.MustAppend(t, "headdrain-1", 1)
	ts.API.Drain()
	for _, path := range []string{"/v1/streams/headdrain-1/subscribe", "/v1/feeds/all/subscribe"} {
		MustProblem(t, ts.Do(t, "GET", path, nil), http.StatusServiceUnavailable, "unavailable")
		MustProblemHead(t, ts.Do(t, "HEAD", path, nil), http.StatusServiceUnavailable)
	}
}
