package httpapi

import (
	"fmt"
	"net/http"
	"sync"

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
