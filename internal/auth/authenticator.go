package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure an Authenticator. Zero fields take the defaults.
type Options struct {
	// Refresh is how often the keys are re-read. Default 2s.
	Refresh time.Duration
	// MaxStale is the longest an instance trusts its copy of the keys:
	// when no read succeeded for this long, every token is refused with
	// ErrKeysUnavailable. It bounds how long a revoked key keeps working.
	// Default 10s; at least Refresh.
	MaxStale time.Duration
	// MissReload is the shortest time between two reads caused by unknown
	// tokens (a key just created on another instance works at once, and
	// random tokens cannot make every request read the store). Default 1s.
	MissReload time.Duration
	// ReadTimeout bounds one read of the keys. Default 5s.
	ReadTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives refresh failures. Default slog.Default().
	Logger *slog.Logger
	// Registerer, when set, registers
	// eventlog_auth_refresh_failures_total.
	Registerer prometheus.Registerer
}

func (o *Options) ensureDefaults() {
	if o.Refresh <= 0 {
		o.Refresh = 2 * time.Second
	}
	if o.MaxStale <= 0 {
		o.MaxStale = 10 * time.Second
	}
	o.MaxStale = max(o.MaxStale, o.Refresh)
	if o.MissReload <= 0 {
		o.MissReload = time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Authenticator checks bearer tokens against an in-memory copy of the
// keys, re-read from the KeyStore every Refresh. Safe for concurrent use.
type Authenticator struct {
	store KeyStore
	o     Options

	mu       sync.Mutex
	keys     map[[sha256.Size]byte]*Key
	loadedAt time.Time     // when the current copy was read (zero: never)
	offset   time.Duration // the store's clock less ours (Clock), as last read

	reload     sync.Mutex // one read at a time
	lastReload time.Time  // when the last read (successful or not) started

	// failures counts the reads of the keys that failed (an error, or a
	// panic recovered), background or on demand.
	failures prometheus.Counter

	stop chan struct{}
	done chan struct{}
}

// NewAuthenticator returns an Authenticator over store. Start its
// background refresh with Start.
func NewAuthenticator(store KeyStore, o Options) *Authenticator {
	o.ensureDefaults()
	a := &Authenticator{store: store, o: o, failures: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventlog_auth_refresh_failures_total",
		Help: "Reads of the API keys that failed (Cassandra, or a panic in the read, recovered); past MaxStale without a good one, every token is refused with 503.",
	})}
	if o.Registerer != nil {
		o.Registerer.MustRegister(a.failures)
	}
	return a
}

// Store is the key store the authenticator reads.
func (a *Authenticator) Store() KeyStore { return a.store }

// MaxStale is how long a revocation may take to reach this instance.
func (a *Authenticator) MaxStale() time.Duration { return a.o.MaxStale }

// Start reads the keys once (returning the error if that fails) and
// re-reads them every Refresh until Close. A refresh that fails, or
// panics (recovered: reloadLocked), is logged and counted, and the next
// tick tries again.
func (a *Authenticator) Start(ctx context.Context) error {
	if err := a.Reload(ctx); err != nil {
		return err
	}
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(a.done)
		t := time.NewTicker(a.o.Refresh)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), a.o.ReadTimeout)
				if err := a.Reload(ctx); err != nil {
					a.o.Logger.Warn("api keys refresh failed", "error", err)
				}
				cancel()
			}
		}
	}()
	return nil
}

// Close stops the background refresh.
func (a *Authenticator) Close() {
	if a.stop != nil {
		close(a.stop)
		<-a.done
		a.stop = nil
	}
}

// Reload reads the keys now (after an admin action on this instance, so
// it takes effect here at once).
func (a *Authenticator) Reload(ctx context.Context) error {
	a.reload.Lock()
	defer a.reload.Unlock()
	return a.reloadLocked(ctx)
}

// errReadPanicked: a read of the keys panicked (a key row the store could
// not decode?); the panic was recovered and logged with its stack.
var errReadPanicked = errors.New("read api keys: panicked")

// reloadLocked reads the keys. A panic in the read is recovered and
// returned as an error: the copy held goes stale, and past MaxStale
// tokens are refused with 503, where the panic would end the process
// (the refresh's goroutine) on every instance at once, again at each
// restart, for one bad row.
func (a *Authenticator) reloadLocked(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			a.o.Logger.Error("api keys read panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errReadPanicked, p)
		}
		if err != nil {
			a.failures.Inc()
		}
	}()
	start := a.o.Now()
	a.lastReload = start
	ks, err := a.store.Keys(ctx)
	if err != nil {
		return fmt.Errorf("read api keys: %w", err)
	}
	offset, clocked := a.offset, false
	if c, ok := a.store.(Clock); ok {
		// Where the store's clock stands against ours, from the middle of
		// the read; a failed read keeps the last one.
		before := a.o.Now()
		if t, err := c.Now(ctx); err == nil {
			offset, clocked = t.Sub(before.Add(a.o.Now().Sub(before)/2)), true
		}
	}
	m := make(map[[sha256.Size]byte]*Key, len(ks))
	for i := range ks {
		k := &ks[i]
		if len(k.Hash) != sha256.Size {
			continue
		}
		m[[sha256.Size]byte(k.Hash)] = k
	}
	a.mu.Lock()
	a.keys, a.loadedAt = m, start
	if clocked {
		a.offset = offset
	}
	a.mu.Unlock()
	return nil
}

// Now is the time by which keys expire: the store's clock (Clock) as of
// the last read of the keys, else this instance's.
func (a *Authenticator) Now() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.o.Now().Add(a.offset)
}

// reloadIfOlder reads the keys unless a read started less than age ago
// (waiting for a read under way, then judging again).
func (a *Authenticator) reloadIfOlder(ctx context.Context, age time.Duration) error {
	a.reload.Lock()
	defer a.reload.Unlock()
	if !a.lastReload.IsZero() && a.o.Now().Sub(a.lastReload) < age {
		return nil
	}
	return a.reloadLocked(ctx)
}

// lookup returns the key whose hash is h (nil if none) and the age of the
// copy it was found in.
func (a *Authenticator) lookup(h [sha256.Size]byte) (*Key, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.loadedAt.IsZero() {
		return nil, time.Duration(1<<63 - 1)
	}
	return a.keys[h], a.o.Now().Sub(a.loadedAt)
}

// Authenticate returns the active key whose token the Authorization header
// value h carries. Errors: ErrNoCredentials (no header), ErrInvalidToken
// (malformed, unknown, expired or revoked), ErrKeysUnavailable (the keys
// could not be read within MaxStale).
func (a *Authenticator) Authenticate(ctx context.Context, h string) (*Key, error) {
	token, err := ParseAuthorization(h)
	if err != nil {
		return nil, err
	}
	hash := HashToken(token)
	k, age := a.lookup(hash)
	if age >= a.o.MaxStale {
		// The background refresh is failing: try once more ourselves,
		// then refuse rather than honour a possibly revoked key.
		rctx, cancel := context.WithTimeout(ctx, a.o.ReadTimeout)
		err := a.reloadIfOlder(rctx, a.o.MissReload)
		cancel()
		if k, age = a.lookup(hash); age >= a.o.MaxStale {
			if err == nil {
				err = errors.New("no recent read")
			}
			return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
		}
	}
	if k == nil {
		// Perhaps created on another instance since the last refresh.
		rctx, cancel := context.WithTimeout(ctx, a.o.ReadTimeout)
		err := a.reloadIfOlder(rctx, a.o.MissReload)
		cancel()
		if err != nil {
			a.o.Logger.Warn("api keys read failed", "error", err)
		}
		k, _ = a.lookup(hash)
	}
	// The map lookup above is keyed by the hash, whose timing tells an
	// attacker nothing about a token; the equality itself is checked in
	// constant time.
	if k == nil || subtle.ConstantTimeCompare(k.Hash, hash[:]) != 1 || !k.Active(a.Now()) {
		return nil, ErrInvalidToken
	}
	return k, nil
}
