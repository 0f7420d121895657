package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
)

// slots counts what this server serves at once that holds a connection
// and store reads while it lasts (live subscriptions, long reads), in
// total and per API key, so that one key cannot take them all.
type slots struct {
	mu        sync.Mutex
	total     int
	perKey    map[string]int
	max       int
	maxPerKey int
}

func newSlots(max, maxPerKey int) slots {
	return slots{max: max, maxPerKey: maxPerKey, perKey: map[string]int{}}
}

// take takes a slot of key ("": none, only the total counts), or reports
// which limit is reached: full or keyFull. Call release when it ends.
func (l *slots) take(key string) (release func(), full, keyFull bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total >= l.max:
		return nil, true, false
	case key != "" && l.perKey[key] >= l.maxPerKey:
		return nil, false, true
	}
	l.total++
	if key != "" {
		l.perKey[key]++
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.total--
		if key != "" {
			if l.perKey[key]--; l.perKey[key] <= 0 {
				delete(l.perKey, key)
			}
		}
	}, false, false
}

// keyName is the name of c's API key, "" without one.
func keyName(c *echo.Context) string {
	if k := keyOf(c); k != nil {
		return k.Name
	}
	return ""
}

// subscriptionRetryAfter is the Retry-After of a refused subscription, in
// seconds.
const subscriptionRetryAfter = "5"

// acquireSubscription takes a slot for a live subscription of c's key, or
// answers 429 too_many_subscriptions. Call release when it ends.
func (s *Server) acquireSubscription(c *echo.Context) (release func(), err error) {
	if s.draining.Load() {
		// It would end at once, and the client reconnect here again
		// while a load balancer still sends it here: it goes elsewhere.
		return nil, shuttingDown()
	}
	return refuseFull(c, &s.subs, "live subscriptions", CodeTooManySubscriptions, subscriptionRetryAfter)
}

// shuttingDown is the answer to a subscription, or to the HEAD of a
// subscription or of an NDJSON replay or feed read, on a server shutting
// down.
func shuttingDown() error {
	return newProblem(http.StatusServiceUnavailable, CodeUnavailable, "the server is shutting down")
}

// refuseFull takes a slot of sl for c's key, or answers 429 code, saying
// which bound of what it holds was reached.
func refuseFull(c *echo.Context, sl *slots, what, code, retryAfter string) (release func(), err error) {
	release, full, keyFull := sl.take(keyName(c))
	var detail string
	switch {
	case full:
		detail = fmt.Sprintf("this server serves at most %d %s at once", sl.max, what)
	case keyFull:
		detail = fmt.Sprintf("an API key may hold at most %d %s at once on one server", sl.maxPerKey, what)
	default:
		return release, nil
	}
	c.Response().Header().Set("Retry-After", retryAfter)
	return nil, newProblem(http.StatusTooManyRequests, code, detail)
}

// longReadRetryAfter is the Retry-After of a refused long read, in
// seconds: shorter than a subscription's, as a feed page ends within a
// few queries (a replay lasts as long as its client reads).
const longReadRetryAfter = "2"

// acquireLongRead takes a slot for a long read, or answers 429
// too_many_long_reads. Call release when it ends. Long reads are NDJSON
// replays of a stream, feed reads and state loads of more than MaxPageSize
// events: each holds a connection, store reads and up to about two pages
// of events for as long as it lasts, and clients could otherwise open them
// by the hundred. A stream's JSON page is not one: it is bounded by its
// limit and sent as it is read. With API keys, one key holds at most
// MaxLongReadsPerKey of them, so that a key's burst of replays does not
// refuse every other key's reads.
func (s *Server) acquireLongRead(c *echo.Context) (release func(), err error) {
	return refuseFull(c, &s.longReads, "long reads (stream replays, state loads, feed reads)", CodeTooManyLongReads, longReadRetryAfter)
}

// acquireGroupRead takes a slot for a consumer group read, or answers 429
// too_many_long_reads (the code a client already retries). A group read is
// a feed read whose page is held whole, so it is bounded as a long read
// is, but from slots of its own (MaxGroupReads, and MaxLongReadsPerKey a
// key): a group member is a production consumer reading a page at a time,
// and a burst of replays, often an ad-hoc rebuild, must not make it wait.
func (s *Server) acquireGroupRead(c *echo.Context) (release func(), err error) {
	return refuseFull(c, &s.groupReads, "consumer group reads", CodeTooManyLongReads, longReadRetryAfter)
}

// buckets are the token buckets of the per-key rate limit.
type buckets struct {
	mu sync.Mutex
	m  map[string]*bucket
}

// bucket is a token bucket: rate tokens a second, at most burst.
type bucket struct {
	tokens float64
	last   time.Time
}

// take spends a token of key's bucket at now, or reports how long until
// one is there.
func (b *buckets) take(key string, rate float64, burst int, now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*bucket{}
	}
	k := b.m[key]
	if k == nil {
		if len(b.m) >= 100_000 { // keys are few; bound the map anyway
			clear(b.m)
		}
		k = &bucket{tokens: float64(burst), last: now}
		b.m[key] = k
	}
	k.tokens = min(float64(burst), k.tokens+now.Sub(k.last).Seconds()*rate)
	k.last = now
	if k.tokens >= 1 {
		k.tokens--
		return true, 0
	}
	// In seconds first: at a tiny rate (a key an admin slowed almost to a
	// halt) the wait is past what a time.Duration holds, and converting
	// it overflowed to a negative Retry-After.
	return false, time.Duration(min((1-k.tokens)/rate, maxRateWait.Seconds()) * float64(time.Second))
}

// maxRateWait bounds the wait take reports (a Retry-After): about 31
// years, below time.Duration's limit.
const maxRateWait = 1e9 * time.Second

// rateLimit is middleware after authenticate: a key's requests beyond its
// rate (auth.Key.RateLimit, else Config.RateLimit) are 429 rate_limited
// with Retry-After. Without a key, or with no rate, it does nothing.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		k := keyOf(c)
		if k == nil || internalRoute(c) {
			// Internal routes: the instance that took the client's
			// request counted it.
			return next(c)
		}
		rate := s.cfg.RateLimit
		if k.RateLimit > 0 {
			rate = k.RateLimit
		}
		if rate <= 0 {
			return next(c)
		}
		burst := s.cfg.RateBurst
		if burst < 1 {
			burst = max(1, int(math.Ceil(rate)))
		}
		if ok, wait := s.buckets.take(k.Name, rate, burst, time.Now()); !ok {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			return newProblem(http.StatusTooManyRequests, CodeRateLimited,
				fmt.Sprintf("the API key may make %g requests a second", rate))
		}
		return next(c)
	}
}
