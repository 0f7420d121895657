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

// subscriptions counts the live subscriptions of this server, in total and
// per API key: each holds a connection and reads the store while it lasts.
type subscriptions struct {
	mu        sync.Mutex
	total     int
	perKey    map[string]int
	max       int
	maxPerKey int
}

// subscriptionRetryAfter is the Retry-After of a refused subscription, in
// seconds.
const subscriptionRetryAfter = "5"

// acquireSubscription takes a slot for a live subscription of c's key, or
// answers 429 too_many_subscriptions. Call release when it ends.
func (s *Server) acquireSubscription(c *echo.Context) (release func(), err error) {
	key := ""
	if k := keyOf(c); k != nil {
		key = k.Name
	}
	if s.draining.Load() {
		// It would end at once, and the client reconnect here again
		// while a load balancer still sends it here: it goes elsewhere.
		return nil, newProblem(http.StatusServiceUnavailable, CodeUnavailable, "the server is shutting down")
	}
	l := &s.subs
	l.mu.Lock()
	defer l.mu.Unlock()
	var detail string
	switch {
	case l.total >= l.max:
		detail = fmt.Sprintf("this server serves at most %d live subscriptions", l.max)
	case key != "" && l.perKey[key] >= l.maxPerKey:
		detail = fmt.Sprintf("an API key may hold at most %d live subscriptions on one server", l.maxPerKey)
	}
	if detail != "" {
		c.Response().Header().Set("Retry-After", subscriptionRetryAfter)
		return nil, newProblem(http.StatusTooManyRequests, CodeTooManySubscriptions, detail)
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
	}, nil
}

// longReadRetryAfter is the Retry-After of a refused long read, in
// seconds: shorter than a subscription's, as a feed page ends within a
// few queries (a replay lasts as long as its client reads).
const longReadRetryAfter = "2"

// acquireLongRead takes a slot for a long read, or answers 429
// too_many_long_reads. Call release when it ends. Long reads are NDJSON
// replays of a stream and feed reads: each holds a connection, store reads
// and up to about two pages of events for as long as it lasts, and
// clients could otherwise open them by the hundred. A stream's JSON page is
// not one: it is bounded by its limit and sent as it is read.
func (s *Server) acquireLongRead(c *echo.Context) (release func(), err error) {
	select {
	case s.longReads <- struct{}{}:
		return func() { <-s.longReads }, nil
	default:
		c.Response().Header().Set("Retry-After", longReadRetryAfter)
		return nil, newProblem(http.StatusTooManyRequests, CodeTooManyLongReads,
			fmt.Sprintf("this server serves at most %d stream replays and feed reads at once", cap(s.longReads)))
	}
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
	return false, time.Duration((1 - k.tokens) / rate * float64(time.Second))
}

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
