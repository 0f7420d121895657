package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// downKeys is a key store whose keys stop being readable once down is set.
type downKeys struct {
	*keystore.Store
	down atomic.Bool
}

func (d *downKeys) Keys(ctx context.Context) ([]auth.Key, error) {
	if d.down.Load() {
		return nil, errors.New("keys table unreadable")
	}
	return d.Store.Keys(ctx)
}

// TestLongReadWhileKeysUnreadable: a replay held open while the keys cannot
// be read past --key-max-stale ends as a new request would then be
// answered, 503 unavailable, not 401 as if its key were revoked (which
// clients take for final, the CLI as exit 7).
func TestLongReadWhileKeysUnreadable(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := &keyGate{at: 20, entered: make(chan string, 4), open: make(chan struct{})}
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Limits, so.Cassandra.Registerer = testLimits, reg
	})
	g.Store = store
	ks, err := keystore.New(cassandratest.Session(t, opts.Cassandra), opts.Cassandra.SerialConsistency, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	keys := &downKeys{Store: ks}
	a := auth.NewAuthenticator(keys, auth.Options{Refresh: 200 * time.Millisecond, MaxStale: time.Second})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ts := startServer(t, store, opts, reg, func(log.Store) log.Store { return g }, func(c *httpapi.Config) { c.Auth, c.Keys = a, keys })
	as := &authServer{testServer: ts, Keys: ks, Auth: a}
	root := as.MustToken(t, "root", 0, "admin")
	data := `"` + strings.Repeat("x", 1<<10) + `"`
	for range 5 {
		body := `{"events":[` + strings.Repeat(`{"type":"t","data":`+data+`},`, 4) + `{"type":"t","data":` + data + `}]}`
		if r := as.As(t, root, "POST", "/v1/streams/big-1/events", body, "Content-Type", jsonCT); r.Status != http.StatusCreated {
			t.Fatalf("append: %s", r)
		}
	}
	key := as.MustToken(t, "reader", 0, "read:*")
	t.Cleanup(func() { close(g.open) })
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", as.URL+"/v1/streams/big-1/events?from=20", nil)
		req.Header.Set("Accept", "application/x-ndjson")
		req.Header.Set("Authorization", key)
		resp, err := as.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the replay did not reach its gate")
	}
	keys.down.Store(true)
	select {
	case status := <-done:
		if status != http.StatusServiceUnavailable {
			t.Fatalf("a replay held while the keys could not be read: %d, want 503", status)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the replay was still open 20 s after the keys became unreadable")
	}
}
