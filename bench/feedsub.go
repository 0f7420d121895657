package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/log"
)

// maxCategoryLen keeps "<category>-subscribe-<time>-<i>" within a stream
// id's 200 characters.
const maxCategoryLen = 150

// parseFeedFlag validates --feed: all, category/<c> or type/<t>, where t
// must be a type the harness generates (otherwise nothing would arrive).
func parseFeedFlag(s string) (log.Feed, error) {
	kind, name, _ := strings.Cut(s, "/")
	f, err := log.ParseFeed(kind, name)
	if err != nil {
		return log.Feed{}, fmt.Errorf("--feed %q: want all, category/<c> or type/<t>: %w", s, err)
	}
	switch {
	case f.Kind == log.FeedCategory && len(name) > maxCategoryLen:
		return log.Feed{}, fmt.Errorf("--feed %q: category longer than %d characters", s, maxCategoryLen)
	case f.Kind == log.FeedType && !slices.Contains(eventTypes, name):
		return log.Feed{}, fmt.Errorf("--feed %q: the harness appends only the types %s", s, strings.Join(eventTypes, ", "))
	}
	return f, nil
}

// subscribePrefix is the run's stream prefix: a category feed's streams
// are put in its category, so the feed holds every event of the run.
func subscribePrefix(f log.Feed, t time.Time) string {
	p := runPrefix("subscribe", t)
	if f.Kind == log.FeedCategory {
		p = f.Name + strings.TrimPrefix(p, "bench")
	}
	return p
}

// feedExpects reports whether an event of type typ on stream belongs to
// f (the run's streams are all in the category of a category feed).
func feedExpects(f log.Feed, typ string) bool {
	return f.Kind != log.FeedType || typ == f.Name
}

// feedSubscribePath is the subscription's path, from=<position> or now.
func feedSubscribePath(f log.Feed, from string) string {
	p := "/v1/feeds/all/subscribe"
	switch f.Kind {
	case log.FeedCategory:
		p = "/v1/feeds/category/" + url.PathEscape(f.Name) + "/subscribe"
	case log.FeedType:
		p = "/v1/feeds/type/" + url.PathEscape(f.Name) + "/subscribe"
	}
	return p + "?from=" + url.QueryEscape(from)
}

// feedLine is the part of a feed NDJSON line the harness reads.
type feedLine struct {
	Position string    `json:"position"`
	Stream   string    `json:"stream"`
	ID       uuid.UUID `json:"id"`
	Type     string    `json:"type"`
	Version  int64     `json:"version"`
}

// parseFeedLine decodes one NDJSON line of a feed subscription. Lines
// without an "id" key (blank lines, heartbeat objects) are not events: ok
// is false. An event line must carry an id, a stream, a positive version
// and a position.
func parseFeedLine(line []byte) (ev feedLine, ok bool, err error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || !bytes.Contains(line, []byte(`"id"`)) {
		return feedLine{}, false, nil
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		return feedLine{}, false, fmt.Errorf("feed line %.200q: %w", line, err)
	}
	if ev.ID == uuid.Nil || ev.Stream == "" || ev.Version < 1 || ev.Position == "" {
		return feedLine{}, false, fmt.Errorf("feed line %.200q: want id, stream, version >= 1 and position", line)
	}
	return ev, true, nil
}

// maxFeedLine bounds one NDJSON line (an event is at most a few MiB).
const maxFeedLine = 16 << 20

// feedSubscriber follows one feed subscription over HTTP and hands every
// event to the delivery tracker as it reads it. When the response ends or
// breaks it reconnects from the last position it saw (from=now before the
// first event), so a server that closes idle subscriptions costs nothing
// but a counted reconnect.
type feedSubscriber struct {
	n      int            // index among the subscribers
	api    *client.Client // set: follow with client.SubscribeFeed
	client *http.Client
	base   string
	feed   log.Feed
	track  *deliveries

	pos        string // the last event's position
	reconnects int
	lastErr    error

	connected chan struct{} // closed at the first 200 answer
	once      sync.Once
}

// subscriberRetry bounds the back-off between reconnects.
const subscriberRetry = time.Second

// run follows the feed until ctx ends. It returns an error only for an
// answer that a reconnect will not change (a 4xx or 5xx before the first
// connection: no feeds, a bad feed name).
func (s *feedSubscriber) run(ctx context.Context) error {
	if s.api != nil {
		return s.runClient(ctx)
	}
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var he *httpError
		if errors.As(err, &he) && !s.isConnected() {
			return fmt.Errorf("subscriber %d: GET %s: %w", s.n, feedSubscribePath(s.feed, "now"), err)
		}
		s.reconnects++
		s.lastErr = err
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, subscriberRetry)
	}
	return nil
}

func (s *feedSubscriber) isConnected() bool {
	select {
	case <-s.connected:
		return true
	default:
		return false
	}
}

// follow runs one subscription request until its response ends.
func (s *feedSubscriber) follow(ctx context.Context) error {
	from := "now"
	if s.pos != "" {
		from = s.pos
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+feedSubscribePath(s.feed, from), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readAnswer(resp, nil)
	}
	s.once.Do(func() { close(s.connected) })
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxFeedLine)
	for sc.Scan() {
		at := time.Now()
		ev, ok, err := parseFeedLine(sc.Bytes())
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		s.track.delivered(s.n, &ev, at)
		s.pos = ev.Position
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the subscription response ended")
}

// runClient follows the feed with the public client, which reconnects and
// resumes by itself: the path applications take. "now" is resolved to a
// position first, so the start does not depend on when the subscription
// connects.
func (s *feedSubscriber) runClient(ctx context.Context) error {
	feed := s.feed.String()
	page, err := s.api.ReadFeed(ctx, feed, client.FromNow, 1)
	if err != nil {
		return fmt.Errorf("subscriber %d: resolve from=now on %s: %w", s.n, feed, err)
	}
	from := page.Next
	if len(page.Events) > 0 {
		from = page.Events[0].Position // nothing is appended yet; be exact anyway
		s.deliver(&page.Events[0], time.Now())
	}
	s.once.Do(func() { close(s.connected) })
	for ev, err := range s.api.SubscribeFeed(ctx, feed, client.FeedOptions{From: from}) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("subscriber %d: %w", s.n, err)
		}
		s.deliver(&ev, time.Now())
	}
	return nil
}

func (s *feedSubscriber) deliver(ev *client.FeedEvent, at time.Time) {
	s.track.delivered(s.n, &feedLine{Position: ev.Position, Stream: ev.Stream, ID: ev.ID, Type: ev.Type, Version: ev.Version}, at)
	s.pos = ev.Position
}
