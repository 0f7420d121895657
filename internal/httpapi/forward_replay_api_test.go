package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/partition"
)

// capturedForward is a signed forward as one instance sent it to another.
type capturedForward struct {
	url    string
	header http.Header
	body   []byte
}

// forwardTap is a transport that keeps a copy of every forward it sends,
// as an attacker on the network between two instances could.
type forwardTap struct {
	mu  sync.Mutex
	got []capturedForward
}

func (t *forwardTap) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/internal/v1/appends" {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		t.mu.Lock()
		t.got = append(t.got, capturedForward{url: r.URL.String(), header: r.Header.Clone(), body: body})
		t.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// last returns the forward sent last.
func (t *forwardTap) last(tb testing.TB) capturedForward {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.got) == 0 {
		tb.Fatal("no forward was sent")
	}
	return t.got[len(t.got)-1]
}

// TestForwardReplayIsRetry: a signed forward captured on the network and
// sent again to the owner while its signature is valid must not append its
// events a second time. Ids the server made for an append without them
// were not recorded for idempotency, so a replay of an "any" append was a
// second append with the same ids. The owner now records every forwarded
// id, and answers a replay as a retry: the original versions, duplicate.
// The client's answer is unchanged: the ids the forwarding instance made.
func TestForwardReplayIsRetry(t *testing.T) {
	base := MustAuthServer(t, auth.Options{}, nil)
	root := base.MustToken(t, "root", 0, "admin")
	o := base.Opts
	a := httpInstance(t, o, nil)
	base.Store.Close()
	tap := &forwardTap{}
	b := httpInstanceVia(t, o, tap, nil)
	for _, x := range []*authServer{a, b} {
		if err := x.Auth.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		before   int    // events appended through the owner first
		expected string // expected_version of the forwarded append
	}{
		{"Any", 0, `"any"`},
		{"Exists", 1, `"exists"`},
		{"Exact", 1, `1`},
		{"NoStream", 0, `"no_stream"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := ownedStream(t, a.Store, o.Cassandra.Shards, "replay"+tc.name)
			if slices.Contains(b.Store.Owned(), partition.ShardOf(stream, o.Cassandra.Shards)) {
				t.Skip("b took the stream's shard")
			}
			for range tc.before {
				if r := a.As(t, root, "POST", "/v1/streams/"+stream+"/events", `{"events":[{"type":"t","data":0}]}`, "Content-Type", jsonCT); r.Status != http.StatusCreated {
					t.Fatalf("append through the owner: %s", r)
				}
			}
			body := fmt.Sprintf(`{"expected_version":%s,"events":[{"type":"t","data":1},{"type":"t","data":2}]}`, tc.expected)
			r := b.As(t, root, "POST", "/v1/streams/"+stream+"/events", body, "Content-Type", jsonCT)
			if r.Status != http.StatusCreated {
				t.Fatalf("append through a non-owner: %s", r)
			}
			var orig struct {
				FirstVersion int64 `json:"first_version"`
				Events       []struct {
					ID      uuid.UUID `json:"id"`
					Version int64     `json:"version"`
				} `json:"events"`
			}
			if err := json.Unmarshal(r.Body, &orig); err != nil || len(orig.Events) != 2 {
				t.Fatalf("append answer: %v: %s", err, r)
			}
			for _, e := range orig.Events {
				if e.ID.Version() != 7 {
					t.Fatalf("id %s: want one the server made (UUIDv7)", e.ID)
				}
			}

			fw := tap.last(t)
			req, err := http.NewRequest(http.MethodPost, fw.url, bytes.NewReader(fw.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = fw.header.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("replay: %d %s", resp.StatusCode, raw)
			}
			var ans struct {
				Results []struct {
					Result *struct {
						FirstVersion int64 `json:"first_version"`
						Duplicate    bool  `json:"duplicate"`
					} `json:"result"`
					Problem json.RawMessage `json:"problem"`
				} `json:"results"`
			}
			if err := json.Unmarshal(raw, &ans); err != nil || len(ans.Results) != 1 {
				t.Fatalf("replay answer: %v: %s", err, raw)
			}
			if res := ans.Results[0].Result; res == nil || !res.Duplicate || res.FirstVersion != orig.FirstVersion {
				t.Errorf("replay answered %s, want the original append (first_version %d, duplicate)", raw, orig.FirstVersion)
			}

			r = a.As(t, root, "GET", "/v1/streams/"+stream+"/events", "")
			if r.Status != http.StatusOK {
				t.Fatalf("read: %s", r)
			}
			var got struct {
				Events []struct {
					ID      uuid.UUID `json:"id"`
					Version int64     `json:"version"`
				} `json:"events"`
			}
			if err := json.Unmarshal(r.Body, &got); err != nil {
				t.Fatal(err)
			}
			if n := len(got.Events); n != tc.before+2 {
				t.Fatalf("the stream holds %d events, want %d (the forwarded ones once): %s", n, tc.before+2, r)
			}
			for i, e := range orig.Events {
				if g := got.Events[tc.before+i]; g.ID != e.ID || g.Version != e.Version {
					t.Errorf("stored %+v, the client was answered %+v", g, e)
				}
			}
		})
	}
}
