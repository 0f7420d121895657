package keystore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/log"
)

// MustKeyStore opens a key store with a session of its own on o's
// keyspace, closed when the test ends.
func MustKeyStore(tb testing.TB, o cassandra.Options) (*keystore.Store, func()) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	session, err := cassandra.Connect(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(session.Close)
	ks, err := keystore.New(session, o.SerialConsistency, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	return ks, session.Close
}

func mustNewKey(tb testing.TB, name string, ttl time.Duration, scopes ...string) (auth.Key, string) {
	tb.Helper()
	k, tok, err := auth.NewKey(name, scopes, ttl, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return k, tok
}

// TestKeyStore runs its cases in one keyspace, one after the other
// (creating a keyspace is the slow part).
func TestKeyStore(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	t.Run("CreateListRevoke", func(t *testing.T) { testCreateListRevoke(t, o) })
	t.Run("AuthenticatorRevocation", func(t *testing.T) { testAuthenticatorRevocation(t, o) })
	t.Run("AuthenticatorStale", func(t *testing.T) { testAuthenticatorStale(t, o) })
	t.Run("ExpiryUnderSkew", func(t *testing.T) { testExpiryUnderSkew(t, o) })
}

// testExpiryUnderSkew: instances whose clocks are hours behind and ahead
// end a key at the same moment, the key store's clock: one behind
// honoured an expired key for the skew's length, one ahead refused a
// valid one.
func testExpiryUnderSkew(t *testing.T, o cassandra.Options) {
	ks, _ := MustKeyStore(t, o)
	ctx := context.Background()
	now, err := ks.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(now); d > time.Minute || d < -time.Minute {
		t.Fatalf("the store's clock reads %v, %v from ours", now, d)
	}
	expired, expiredTok, err := auth.NewKey("expired", []string{"read:*"}, time.Second, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	valid, validTok, err := auth.NewKey("valid", []string{"read:*"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []auth.Key{expired, valid} {
		if err := ks.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, skew := range []time.Duration{-3 * time.Hour, 3 * time.Hour} {
		a := auth.NewAuthenticator(ks, auth.Options{Now: func() time.Time { return time.Now().Add(skew) }})
		if err := a.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, "Bearer "+expiredTok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("clock %v off: a key that expired a minute ago by the store's clock: %v, want refused", skew, err)
		}
		if k, err := a.Authenticate(ctx, "Bearer "+validTok); err != nil || k.Name != "valid" {
			t.Errorf("clock %v off: a key valid for an hour more: %v, %v, want accepted", skew, k, err)
		}
		if d := a.Now().Sub(time.Now()); d > time.Minute || d < -time.Minute {
			t.Errorf("clock %v off: the authenticator's time is %v from the store's", skew, d)
		}
	}
}

func testCreateListRevoke(t *testing.T, o cassandra.Options) {
	ks, _ := MustKeyStore(t, o)
	ctx := context.Background()

	a, _ := mustNewKey(t, "ci", time.Hour, "read:user-*", "append:user-42")
	a.RateLimit = 7.5
	if err := ks.CreateKey(ctx, a); err != nil {
		t.Fatal(err)
	}
	// The same create again (a retry) is fine; another key of the name is not.
	if err := ks.CreateKey(ctx, a); err != nil {
		t.Fatalf("repeated create: %v", err)
	}
	other, _ := mustNewKey(t, "ci", 0, "admin")
	if err := ks.CreateKey(ctx, other); !errors.Is(err, auth.ErrKeyExists) {
		t.Fatalf("second key of the name: %v, want ErrKeyExists", err)
	}
	b, _ := mustNewKey(t, "admin-1", 0, "admin")
	if err := ks.CreateKey(ctx, b); err != nil {
		t.Fatal(err)
	}

	keys, err := ks.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Name != "admin-1" || keys[1].Name != "ci" {
		t.Fatalf("keys %+v", keys)
	}
	got := keys[1]
	if !slices.Equal(got.Hash, a.Hash) || !slices.Equal(got.ScopeStrings(), []string{"read:user-*", "append:user-42"}) ||
		!got.Created.Equal(a.Created) || !got.Expires.Equal(a.Expires) || !got.Revoked.IsZero() || !keys[0].Expires.IsZero() ||
		got.RateLimit != 7.5 || keys[0].RateLimit != 0 {
		t.Fatalf("stored %+v, created %+v", got, a)
	}

	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := ks.RevokeKey(ctx, "ci", at); err != nil {
		t.Fatal(err)
	}
	if err := ks.RevokeKey(ctx, "ci", at.Add(time.Hour)); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if err := ks.RevokeKey(ctx, "nope", at); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Fatalf("revoke of an unknown key: %v", err)
	}
	keys, err = ks.Keys(ctx)
	if err != nil || len(keys) != 2 || !keys[1].Revoked.Equal(at) || !keys[0].Revoked.IsZero() {
		t.Fatalf("after revoke: %+v %v (want ci revoked at %v, the first time)", keys, err, at)
	}
}

// testAuthenticatorRevocation: a key revoked through one instance's store
// is refused by another instance within its refresh, and a key created
// elsewhere works at once (an unknown token triggers a read).
func testAuthenticatorRevocation(t *testing.T, o cassandra.Options) {
	ks1, _ := MustKeyStore(t, o)
	ks2, _ := MustKeyStore(t, o)
	ctx := context.Background()
	a := auth.NewAuthenticator(ks1, auth.Options{Refresh: 200 * time.Millisecond, MaxStale: 2 * time.Second})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	k, tok := mustNewKey(t, "late", 0, "read:*")
	if err := ks2.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past MissReload since Start's read
	got, err := a.Authenticate(ctx, "Bearer "+tok)
	if err != nil || got.Name != "late" {
		t.Fatalf("key created on another instance: %v, %v", got, err)
	}
	for _, h := range []string{"", "Bearer", "Bearer evl_unknown", "Basic x", "Bearer " + tok + "x"} {
		if _, err := a.Authenticate(ctx, h); !errors.Is(err, auth.ErrNoCredentials) && !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%q: %v", h, err)
		}
	}

	revoked := time.Now()
	if err := ks2.RevokeKey(ctx, "late", revoked); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := a.Authenticate(ctx, "Bearer "+tok)
		if errors.Is(err, auth.ErrInvalidToken) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(revoked) > 2*time.Second {
			t.Fatalf("revoked key still accepted %v later (refresh 200ms)", time.Since(revoked))
		}
		time.Sleep(20 * time.Millisecond)
	}

	exp, expTok := mustNewKey(t, "short", 300*time.Millisecond, "read:*")
	if err := ks2.CreateKey(ctx, exp); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+expTok); err != nil {
		t.Fatalf("fresh key: %v", err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, err := a.Authenticate(ctx, "Bearer "+expTok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("expired key: %v", err)
	}
}

// testAuthenticatorStale: when the keys cannot be read for MaxStale, every
// token is refused as unavailable (a revocation might be missed otherwise).
func testAuthenticatorStale(t *testing.T, o cassandra.Options) {
	ks, closeSession := MustKeyStore(t, o)
	ctx := context.Background()
	k, tok := mustNewKey(t, "k", 0, "read:*")
	if err := ks.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(ks, auth.Options{Refresh: 100 * time.Millisecond, MaxStale: 500 * time.Millisecond})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Authenticate(ctx, "Bearer "+tok); err != nil {
		t.Fatal(err)
	}
	closeSession() // every read fails from now on
	time.Sleep(700 * time.Millisecond)
	_, err := a.Authenticate(ctx, "Bearer "+tok)
	if !errors.Is(err, auth.ErrKeysUnavailable) || !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("stale keys: %v, want ErrKeysUnavailable", err)
	}
}

// TestCreateKeyAnswerLost: a create whose answers are lost (the insert
// applied, Cassandra's answer and the settling read's never arrived) is
// log.ErrOutcomeUnknown: it was answered unavailable ("nothing was
// written", 503), and the client, which retries a 503, was then told
// key_exists, as final, of the key made with the token it never got.
// The same key sent again once Cassandra answers is stored, as the first
// attempt stored it.
func TestCreateKeyAnswerLost(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	session, fo, d := cassandratest.FaultySession(t, o)
	ctx := context.Background()
	ks, err := keystore.New(session, fo.SerialConsistency, fo.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	// A key first, so that the statements are prepared before answers
	// are lost.
	first, _ := mustNewKey(t, "first", 0, "read:*")
	if err := ks.CreateKey(ctx, first); err != nil {
		t.Fatal(err)
	}

	k, _ := mustNewKey(t, "lost", 0, "read:*")
	d.DropResponses.Store(true)
	err = ks.CreateKey(ctx, k)
	d.DropResponses.Store(false)
	if !errors.Is(err, log.ErrOutcomeUnknown) || errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("create whose answers were lost: %v, want outcome unknown", err)
	}

	// The insert applied: the key is there, with its hash, and the same
	// key sent again succeeds.
	other, _ := MustKeyStore(t, o)
	keys, err := other.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(keys, func(x auth.Key) bool { return x.Name == "lost" })
	if i < 0 || !slices.Equal(keys[i].Hash, k.Hash) {
		t.Fatalf("after the lost answers the keys are %+v, want %q with its hash", keys, k.Name)
	}
	if err := other.CreateKey(ctx, k); err != nil {
		t.Fatalf("the same key again: %v", err)
	}
}

// TestNewTakesSerialInAnyCase: the store's options take a serial
// consistency in any case (cassandra.Options), so the key store does too:
// "Local_Serial" stopped the server from starting.
func TestNewTakesSerialInAnyCase(t *testing.T) {
	for _, serial := range []string{"", "SERIAL", "serial", "LOCAL_SERIAL", "Local_Serial", "local_serial"} {
		if _, err := keystore.New(nil, serial, 0); err != nil {
			t.Errorf("New(%q): %v", serial, err)
		}
	}
	if _, err := keystore.New(nil, "QUORUM", 0); err == nil {
		t.Error("New(QUORUM): no error; want one")
	}
}
