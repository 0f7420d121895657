package httpapi_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// readyCountingStore counts the store checks of /readyz.
type readyCountingStore struct {
	log.Store
	checks atomic.Int64
}

func (s *readyCountingStore) Ready(ctx context.Context) error {
	s.checks.Add(1)
	return s.Store.Ready(ctx)
}

// TestReadyzBoundsStoreChecks: /readyz needs no key, so a flood of it
// must not become a flood of Cassandra reads: concurrent and repeated
// probes share one store check a second.
func TestReadyzBoundsStoreChecks(t *testing.T) {
	var rs *readyCountingStore
	ts := MustServerWrapped(t, func(s log.Store) log.Store { rs = &readyCountingStore{Store: s}; return rs }, nil)
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				res, err := ts.Client().Get(ts.URL + "/readyz")
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Errorf("readyz: %d", res.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	if n, most := rs.checks.Load(), int64(time.Since(start).Seconds())+2; n > most {
		t.Fatalf("200 probes of /readyz made %d store checks, want a few (one a second)", n)
	}
}
