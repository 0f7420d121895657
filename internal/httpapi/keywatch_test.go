package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
)

// TestKeyWatchStartsLazily: a read under whileKeyValid has its key checked
// by a watch that starts only once the read has lasted keyCheckEvery
// (time.AfterFunc): a short read, such as the state load before a command,
// starts none and checks nothing, even long after it ended; a long read is
// checked once it has lasted keyCheckEvery, and every keyCheckEvery after.
// (That a long read ends once its key is revoked is
// TestLongReadsEndWithTheirKey's.)
//
// The reads run in a synctest bubble, whose clock moves only when all in
// it wait: "short" and "long" are exact, whatever the machine's speed. The
// key is checked by a real authenticator over the key store, loaded before
// the bubble (its reads go to Cassandra); in the bubble, Authenticate reads
// only its copy, and its clock (auth.Options.Now), which each check reads,
// counts the checks.
func TestKeyWatchStartsLazily(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	ks, err := keystore.New(cassandratest.Session(t, o), o.SerialConsistency, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var clockReads atomic.Int64
	a := auth.NewAuthenticator(ks, auth.Options{Now: func() time.Time {
		clockReads.Add(1)
		return time.Now()
	}})
	k, token, err := auth.NewKey("reader", []string{"read:*"}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Auth: a}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e := echo.New()
	read := func() (context.Context, func()) {
		req := httptest.NewRequest(http.MethodGet, "/v1/streams/s-1/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		c := e.NewContext(req, httptest.NewRecorder())
		c.Set(keyContextKey, &k)
		ctx, _, stop := s.whileKeyValid(c)
		return ctx, stop
	}
	// A check reads the clock: were it not counted, every check below
	// would pass unseen.
	before := clockReads.Load()
	if _, err := a.Authenticate(context.Background(), "Bearer "+token); err != nil {
		t.Fatal(err)
	}
	if clockReads.Load() == before {
		t.Fatal("Authenticate did not read the clock: the checks cannot be counted")
	}

	synctest.Test(t, func(t *testing.T) {
		before := clockReads.Load()
		_, stop := read()
		synctest.Wait() // a short read: it ends with no time passed
		stop()
		time.Sleep(3 * keyCheckEvery)
		synctest.Wait()
		if n := clockReads.Load() - before; n != 0 {
			t.Fatalf("a short read checked its key (%d clock reads), want no watch started", n)
		}

		ctx, stop := read()
		defer stop()
		time.Sleep(keyCheckEvery - time.Millisecond)
		synctest.Wait()
		if n := clockReads.Load() - before; n != 0 {
			t.Fatalf("a read checked its key (%d clock reads) before it lasted %v", n, keyCheckEvery)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		first := clockReads.Load() - before
		if first == 0 {
			t.Fatalf("a read that lasted %v had its key checked by no watch", keyCheckEvery)
		}
		time.Sleep(keyCheckEvery)
		synctest.Wait()
		if n := clockReads.Load() - before; n <= first {
			t.Fatalf("no check of the key %v after the first", keyCheckEvery)
		}
		if err := ctx.Err(); err != nil {
			t.Fatalf("the read of a valid key ended: %v", context.Cause(ctx))
		}
		stop()
		synctest.Wait() // the watch ends with the read
	})
}
