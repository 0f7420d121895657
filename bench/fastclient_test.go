package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Both appenders send the same request and read answers the same way.
func TestAppenders(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Content-Type")+" "+string(body))
		mu.Unlock()
		switch string(body) {
		case "conflict":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"code":"wrong_expected_version","detail":"no","current_version":7}`)
		case "slow":
			time.Sleep(300 * time.Millisecond)
			fallthrough
		default:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"last_version":3,"duplicate":true}`)
		}
	}))
	defer srv.Close()
	fast := newFastAppender(2)
	hc := newHTTPClient(2)
	for name, post := range map[string]func(context.Context, string, []byte, *appendResponse) error{
		"fasthttp": func(ctx context.Context, stream string, body []byte, want *appendResponse) error {
			return fast.post(ctx, srv.URL, stream, body, want)
		},
		"net": func(ctx context.Context, stream string, body []byte, want *appendResponse) error {
			return postAppend(ctx, hc, srv.URL, stream, body, want)
		},
	} {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			ctx := context.Background()
			var ok appendResponse
			if err := post(ctx, "a b/c", []byte("ok"), &ok); err != nil || ok != (appendResponse{LastVersion: 3, Duplicate: true}) {
				t.Fatalf("append: %v %+v", err, ok)
			}
			if err := post(ctx, "s", []byte("ok"), nil); err != nil {
				t.Fatalf("append, answer unread: %v", err)
			}
			err := post(ctx, "s", []byte("conflict"), &ok)
			var he *httpError
			if !errors.As(err, &he) || he.status != http.StatusConflict || code(err) != "wrong_expected_version" ||
				he.p.CurrentVersion == nil || *he.p.CurrentVersion != 7 {
				t.Fatalf("conflict: %v", err)
			}
			tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if err := post(tctx, "s", []byte("slow"), nil); code(err) != "timeout" {
				t.Fatalf("slow answer: %v (%s), want a timeout", err, code(err))
			}
			mu.Lock()
			defer mu.Unlock()
			want := "POST /v1/streams/a%20b%2Fc/events application/json ok"
			if len(got) < 1 || got[0] != want {
				t.Fatalf("first request %q, want %q", got, want)
			}
		})
	}
}
