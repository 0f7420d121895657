package clienttest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// TestToken: Options.Token authenticates every call; without it, or
// beyond its scopes, calls fail with ErrUnauthenticated / ErrForbidden
// and are not retried.
func TestToken(t *testing.T) {
	store, o := shardstoretest.NewStore(t, nil)
	ks, err := keystore.New(cassandratest.Session(t, o.Cassandra), o.Cassandra.SerialConsistency, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k, tok, err := auth.NewKey("app", []string{"append:user-*", "read:user-*"}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(ks, auth.Options{})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	api, err := httpapi.New(store, httpapi.Config{Auth: a, Keys: ks, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api)
	defer ts.Close()

	c, err := client.New(client.Options{BaseURL: ts.URL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(ctx, "user-1", client.Any, client.EventData{Type: "t", Data: 1}); err != nil {
		t.Fatalf("append with the token: %v", err)
	}
	if _, err := c.Append(ctx, "order-1", client.Any, client.EventData{Type: "t", Data: 1}); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("append outside the scopes: %v, want ErrForbidden", err)
	}
	anon, _ := client.New(client.Options{BaseURL: ts.URL})
	start := time.Now()
	if _, err := anon.Append(ctx, "user-1", client.Any, client.EventData{Type: "t", Data: 1}); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("append without a token: %v, want ErrUnauthenticated", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("an unauthenticated call took %v: retried?", time.Since(start))
	}
}
