package main

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"
)

// appendTimeout bounds one append request, resends included; a server that
// takes longer is counted as a timeout, and the run goes on.
const appendTimeout = 60 * time.Second

// maxConflictRetries bounds the re-tries of one exact-version append that
// keeps losing to other writers of its stream.
const maxConflictRetries = 100

// ingestLoad appends through the HTTP API. Its streams are new for each
// run (runPrefix), so exact versions start at no_stream.
type ingestLoad struct {
	cfg      *Config
	client   *http.Client
	fast     *fastAppender // appends, unless --http-client net
	prefix   string
	payloads []payload
	seed     int64
	// versions are the last version seen per stream (exact mode): the
	// expected version of the next append, corrected on a 409.
	versions []atomic.Int64
	// workers numbers every worker ever started, so each compare round
	// draws new streams and payloads instead of repeating the last one's.
	workers atomic.Int64
	// track, if set, is told when each append is first sent and when it
	// is acknowledged (subscribe).
	track *deliveries
	// router, with --route owner, picks each append's instance.
	router *ownerRouter
}

// start checks the server answers and, with --route owner, reads the
// shard owners.
func (l *ingestLoad) start(ctx context.Context) error {
	if err := checkServer(ctx, l.client, l.cfg.URL); err != nil {
		return err
	}
	if l.cfg.Route != "owner" {
		return nil
	}
	r, err := newOwnerRouter(ctx, l.client, l.cfg)
	if err != nil {
		return err
	}
	l.router = r
	return nil
}

func newIngestLoad(c *Config, prefix string, payloads []payload, seed int64) *ingestLoad {
	l := &ingestLoad{cfg: c, client: newHTTPClient(c.Concurrency), prefix: prefix, payloads: payloads, seed: seed}
	if c.HTTPClient == "fasthttp" {
		l.fast = newFastAppender(c.Concurrency)
	}
	if c.Expected == "exact" {
		l.versions = make([]atomic.Int64, c.Streams)
	}
	return l
}

// newOp returns worker's append operation: pick a stream, send an append
// of EventsPerAppend events with fresh client ids, resend the same body on
// an unknown outcome (safe: the ids make it idempotent), and in exact mode
// re-try a 409 at the current version it reports.
func (l *ingestLoad) newOp(int) opFunc {
	n := int(l.workers.Add(1))
	w := newWorkDraw(l.cfg, l.seed, n, l.payloads)
	base := l.cfg.URL
	if k := n % (1 + len(l.cfg.SpreadURLs)); k > 0 {
		base = l.cfg.SpreadURLs[k-1]
	}
	ids, evs := w.ids, w.evs
	var body []byte
	return func(ctx context.Context) outcome {
		ctx, cancel := context.WithTimeout(ctx, appendTimeout)
		defer cancel()
		s, size := w.draw()
		stream := streamName(l.prefix, s)
		if l.router != nil {
			base = l.router.base(stream)
		}
		expected := int64(expectedAny)
		var want *appendResponse
		if l.versions != nil {
			expected = l.versions[s].Load()
			want = &appendResponse{}
		}
		var o outcome
		resends, conflicts := 0, 0
		if l.track != nil {
			l.track.sent(ids, evs, time.Now())
		}
		for {
			body = encodeAppend(body[:0], expected, ids, evs)
			var err error
			if l.fast != nil {
				err = l.fast.post(ctx, base, stream, body, want)
			} else {
				err = postAppend(ctx, l.client, base, stream, body, want)
			}
			if err == nil {
				if l.track != nil {
					l.track.acknowledged(ids, time.Now())
				}
				if want != nil {
					storeMax(&l.versions[s], want.LastVersion)
				}
				o.events, o.bytes = len(ids), size
				return o
			}
			c := code(err)
			var he *httpError
			switch {
			case c == "wrong_expected_version" && l.versions != nil && conflicts < maxConflictRetries &&
				errors.As(err, &he) && he.p.CurrentVersion != nil:
				conflicts++
				expected = *he.p.CurrentVersion
				storeMax(&l.versions[s], expected)
			case (c == "outcome_unknown" || c == "unavailable" || c == "transport") && resends < l.cfg.Retries && ctx.Err() == nil:
				resends++
			default:
				o.code, o.detail = c, err.Error()
				return o
			}
			o.retried = append(o.retried, c)
		}
	}
}

// storeMax raises v to x.
func storeMax(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}
