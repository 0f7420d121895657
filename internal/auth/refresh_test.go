package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// panickyStore is a KeyStore whose Keys panics while panics is set (as
// a key row it cannot decode might make it).
type panickyStore struct {
	keys   []Key
	panics atomic.Bool
}

func (s *panickyStore) CreateKey(context.Context, Key) error { return nil }

func (s *panickyStore) RevokeKey(context.Context, string, time.Time) error { return nil }

func (s *panickyStore) Keys(context.Context) ([]Key, error) {
	if s.panics.Load() {
		panic("undecodable key row")
	}
	return s.keys, nil
}

// TestRefreshSurvivesPanic: a refresh whose read of the keys panics once
// ended the process (the refresh's goroutine). The panic is recovered,
// logged at error level with its stack and counted; the keys go stale,
// so past MaxStale a token is refused with ErrKeysUnavailable (503); and
// the next tick after the store reads again brings the keys back.
func TestRefreshSurvivesPanic(t *testing.T) {
	token, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	store := &panickyStore{keys: []Key{{Name: "k", Scopes: []Scope{{Action: ActionAdmin, Pattern: "*"}}, Hash: hash[:], Created: time.Now().UTC()}}}
	var logs bytes.Buffer // read once the refresh has stopped (slog's handler serializes the writes)
	reg := prometheus.NewRegistry()
	a := NewAuthenticator(store, Options{Refresh: 10 * time.Millisecond, MaxStale: 50 * time.Millisecond, MissReload: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg})
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Authenticate(ctx, "Bearer "+token); err != nil {
		t.Fatalf("before: %v", err)
	}

	store.panics.Store(true)
	// The counter as registered.
	failures := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "eventlog_auth_refresh_failures_total" && len(mf.GetMetric()) == 1 {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}
	deadline := time.Now().Add(5 * time.Second)
	for failures() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := failures(); n < 3 {
		t.Fatalf("eventlog_auth_refresh_failures_total %v, want a panic a tick counted", n)
	}
	time.Sleep(60 * time.Millisecond) // past MaxStale since the last good read
	if _, err := a.Authenticate(ctx, "Bearer "+token); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("keys stale: %v, want ErrKeysUnavailable", err)
	}

	store.panics.Store(false)
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, err := a.Authenticate(ctx, "Bearer "+token)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the store reads again: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.Close()
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "api keys read panicked") ||
		!strings.Contains(out, "undecodable key row") || !strings.Contains(out, "refresh_test.go") {
		t.Errorf("log lacks the panic at error level with its stack: %.2000s", out)
	}
}
