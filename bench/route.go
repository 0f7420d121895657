package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/eventlog/eventlog/internal/partition"
)

// routeRefresh is how often an owner router reads the shard owners again.
const routeRefresh = 2 * time.Second

// ownerRouter sends each append to the instance that owns its stream's
// shard (--route owner), as a shard-aware client would, instead of round
// robin: no append then pays the forwarding hop. It reads the owners from
// GET /v1/cluster and re-reads them every routeRefresh (asynchronously,
// so an append never waits for it); a stream whose owner is unknown, or
// not among the bench's URLs, goes to --url, which forwards it.
type ownerRouter struct {
	client *http.Client
	url    string
	bases  map[string]string // host:port -> base URL
	table  atomic.Pointer[routeTable]
	busy   atomic.Bool
}

type routeTable struct {
	at     time.Time
	shards int
	owner  map[int]string // shard -> base URL
}

// newOwnerRouter reads the owners once, so a run starts routed.
func newOwnerRouter(ctx context.Context, client *http.Client, c *Config) (*ownerRouter, error) {
	r := &ownerRouter{client: client, url: c.URL, bases: map[string]string{}}
	for _, u := range append([]string{c.URL}, c.SpreadURLs...) {
		p, err := url.Parse(u)
		if err != nil {
			return nil, err
		}
		r.bases[p.Host] = u
	}
	if err := r.refresh(ctx); err != nil {
		return nil, fmt.Errorf("--route owner: %w", err)
	}
	return r, nil
}

// base returns the URL to send stream's appends to.
func (r *ownerRouter) base(stream string) string {
	t := r.table.Load()
	if time.Since(t.at) > routeRefresh && r.busy.CompareAndSwap(false, true) {
		go func() {
			defer r.busy.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), routeRefresh)
			defer cancel()
			_ = r.refresh(ctx) // keep the old table; the next call tries again
		}()
	}
	if u, ok := t.owner[partition.ShardOf(stream, t.shards)]; ok {
		return u
	}
	return r.url
}

func (r *ownerRouter) refresh(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/v1/cluster", nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var ci struct {
		Shards    int `json:"shards"`
		Instances []struct {
			Address string `json:"address"`
			Shards  []struct {
				Shard int `json:"shard"`
			} `json:"shards"`
		} `json:"instances"`
	}
	if err := readAnswer(resp, &ci); err != nil {
		return fmt.Errorf("GET /v1/cluster: %w", err)
	}
	if ci.Shards < 1 {
		return fmt.Errorf("GET /v1/cluster: no shard count")
	}
	t := &routeTable{at: time.Now(), shards: ci.Shards, owner: map[int]string{}}
	for _, in := range ci.Instances {
		u, ok := r.bases[in.Address]
		if !ok {
			if h, p, err := net.SplitHostPort(in.Address); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
				u, ok = r.bases[net.JoinHostPort("127.0.0.1", p)]
			}
		}
		if !ok {
			continue
		}
		for _, s := range in.Shards {
			t.owner[s.Shard] = u
		}
	}
	r.table.Store(t)
	return nil
}
