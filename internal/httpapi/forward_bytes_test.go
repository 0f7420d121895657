package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// recordingPeer is an owner's store that records the forwarded appends it
// is asked to commit (log.Store itself is never called).
type recordingPeer struct {
	log.Store
	key []byte
	mu  sync.Mutex
	got []log.AppendRequest
}

func (p *recordingPeer) PeerKey() []byte { return p.key }

func (p *recordingPeer) FlushLocal(context.Context, log.StreamID) error { return nil }

func (p *recordingPeer) AppendLocal(_ context.Context, req log.AppendRequest) (log.AppendResult, error) {
	p.mu.Lock()
	p.got = append(p.got, req)
	p.mu.Unlock()
	evs := make([]log.AppendedEvent, len(req.Events))
	for i, e := range req.Events {
		evs[i] = log.AppendedEvent{ID: e.ID, Version: int64(i + 1)}
	}
	return log.AppendResult{Stream: req.Stream, FirstVersion: 1, LastVersion: int64(len(evs)), Events: evs}, nil
}

// owner serves the internal routes of an instance over p.
func (p *recordingPeer) owner(t *testing.T, mod func(*Config)) *httptest.Server {
	t.Helper()
	cfg := Config{DisableCompression: true}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// TestForwardKeepsPayloadBytes: data and metadata are stored as sent
// (compacted) whichever instance takes the append. A forward must carry
// them byte for byte: HTML-escaping '<', '>', '&' (and U+2028) would store
// other bytes than the owner stores for the same append sent to it
// directly, so a retry of it there is an idempotency conflict, and a
// payload under the event limit could grow past it.
func TestForwardKeepsPayloadBytes(t *testing.T) {
	p := &recordingPeer{key: []byte("0123456789abcdef0123456789abcdef")}
	owner := p.owner(t, nil)
	fwd := Forwarder(Peers{Client: owner.Client(), Key: func() []byte { return p.key }})
	data := []byte(`{"url":"https://x.example/?a=1&b=2","html":"<p>hi</p>","ls":"a` + "\u2028" + `b"}`)
	meta := []byte(`{"note":"a & b <c>"}`)
	req := log.AppendRequest{Stream: "s-1", Expected: log.Any, Events: []log.ProposedEvent{
		{ID: uuid.New(), ClientID: true, Type: "T", Data: data, Metadata: meta}}}
	if _, err := fwd(context.Background(), strings.TrimPrefix(owner.URL, "http://"), req); err != nil {
		t.Fatal(err)
	}
	if len(p.got) != 1 {
		t.Fatalf("the owner got %d appends", len(p.got))
	}
	e := p.got[0].Events[0]
	if !bytes.Equal(e.Data, data) || !bytes.Equal(e.Metadata, meta) {
		t.Fatalf("forwarded payload changed:\n data %s\n want %s\n meta %s\n want %s", e.Data, data, e.Metadata, meta)
	}
	if !e.ClientID || e.ID != req.Events[0].ID {
		t.Fatalf("forwarded id changed: %+v", e)
	}
}

// blockingPeer is a recordingPeer whose appends wait for release.
type blockingPeer struct {
	recordingPeer
	release chan struct{}
}

func (p *blockingPeer) AppendLocal(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	<-p.release
	return p.recordingPeer.AppendLocal(ctx, req)
}

// TestForwardBatchCountsAuthorization: each forwarded append carries its
// client's Authorization value, which the forwarding instance took with
// any run of spaces after "Bearer" (up to the header limit). A batch cut
// without counting it outgrows what the owner reads (forwardBatchLimit),
// and the owner's refusal of the whole request came back as 400 for every
// append in it — other clients' appends included — though none of them
// was bad input.
func TestForwardBatchCountsAuthorization(t *testing.T) {
	p := &blockingPeer{recordingPeer: recordingPeer{key: []byte("0123456789abcdef0123456789abcdef")}, release: make(chan struct{})}
	const maxBody = 64 << 10
	cfg := Config{DisableCompression: true, MaxBodyBytes: maxBody, Peer: p}
	s, err := New(&p.recordingPeer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	owner := httptest.NewServer(s)
	defer owner.Close()
	fwd := Forwarder(Peers{Client: owner.Client(), MaxBatchBytes: maxBody, Key: func() []byte { return p.key }})
	addr := strings.TrimPrefix(owner.URL, "http://")
	// A valid token after 60,000 spaces: within a 64 KiB header limit.
	padded := context.WithValue(context.Background(), bearerKey{}, "Bearer "+strings.Repeat(" ", 60_000)+"tok")
	honest := context.WithValue(context.Background(), bearerKey{}, "Bearer tok")
	req := func(i int) log.AppendRequest {
		return log.AppendRequest{Stream: log.StreamID("s-" + strconv.Itoa(i)), Expected: log.Any,
			Events: []log.ProposedEvent{{ID: uuid.New(), ClientID: true, Type: "T", Data: []byte(`{}`)}}}
	}
	const n = maxForwardsInFlight + 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ctx := padded
		if i == n-1 {
			ctx = honest // another client's append, queued with them
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = fwd(ctx, addr, req(i))
		}()
		if i == maxForwardsInFlight-1 {
			time.Sleep(200 * time.Millisecond) // those in flight, the rest wait
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(p.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			var ve *log.ValidationError
			t.Errorf("append %d (validation error: %t): %v", i, errors.As(err, &ve), err)
		}
	}
}
