package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/auth"
)

// TestMetricsMethodLabelBounded: a request's method is any token the
// client likes, and requests without a key are counted too: each new
// method must not become a new series of the request metrics (memory
// without bound, and a /metrics scrape that grows with it).
func TestMetricsMethodLabelBounded(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, nil)
	admin := as.MustToken(t, "admin", 0, "admin")
	srv := httptest.NewServer(as.API) // as sent, without the spec's checks
	defer srv.Close()
	for i := range 50 {
		req, _ := http.NewRequest(fmt.Sprintf("X%dY", i), srv.URL+"/v1/streams/s-1/events", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	r := as.As(t, admin, "GET", "/metrics", "")
	if r.Status != http.StatusOK {
		t.Fatal(r)
	}
	if n := strings.Count(string(r.Body), `eventlog_http_requests_total{method="X`); n > 0 {
		t.Fatalf("%d series of eventlog_http_requests_total for made-up methods, want them counted as one method (other)", n)
	}
	if !strings.Contains(string(r.Body), `eventlog_http_requests_total{method="other"`) {
		t.Fatalf("made-up methods not counted as other:\n%s", r.Body)
	}
}
