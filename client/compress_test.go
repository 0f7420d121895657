package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestCompressOption: by default the client asks for plain answers
// (Accept-Encoding: identity), so a replay costs the server no
// compression; with Compress it lets Go's transport ask for gzip.
func TestCompressOption(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Accept-Encoding")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	for _, c := range []struct {
		compress bool
		want     string
	}{{false, "identity"}, {true, "gzip"}} {
		cl, err := New(Options{BaseURL: srv.URL, Compress: c.compress})
		if err != nil {
			t.Fatal(err)
		}
		_ = cl.Health(context.Background())
		if enc := <-got; enc != c.want {
			t.Errorf("Compress %v: Accept-Encoding %q, want %q", c.compress, enc, c.want)
		}
	}
}
