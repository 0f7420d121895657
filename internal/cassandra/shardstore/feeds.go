package shardstore

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/log"
)

// The feeds are the shard logs, read by package feeds. Position tokens are
// its HMAC'd cursors, bound to the feed they were read from: a token of
// another feed, keyspace or shard count, or one altered or made up, is
// refused (400 invalid_position), and so is a position past a log's end.

var (
	_ log.FeedStore   = (*Store)(nil)
	_ log.FeedWatcher = (*Store)(nil)
)

// ReadFeed implements log.FeedStore. r.Shards are shard-log shards.
// CompleteUpTo and AtEnd are the page's (feeds.Page).
func (s *Store) ReadFeed(ctx context.Context, r log.FeedRead) (log.FeedPage, error) {
	name := r.Feed.String()
	if _, err := log.ParseFeedPath(name); err != nil {
		return log.FeedPage{}, err
	}
	after, err := s.feeds.Decode(r.After, name)
	if err != nil {
		return log.FeedPage{}, err
	}
	p, err := s.feeds.Read(ctx, feeds.Request{Feed: r.Feed, After: after, Limit: r.Limit, Shards: r.Shards, MaxBytes: r.MaxBytes})
	if err != nil {
		return log.FeedPage{}, err
	}
	return s.feedPage(p, name), nil
}

// CheckFeed implements log.FeedStore: the token is decoded as ReadFeed
// decodes it, and its positions placed against the logs' statics
// (feeds.Reader.Check), no row read.
func (s *Store) CheckFeed(ctx context.Context, r log.FeedRead) error {
	name := r.Feed.String()
	if _, err := log.ParseFeedPath(name); err != nil {
		return err
	}
	after, err := s.feeds.Decode(r.After, name)
	if err != nil {
		return err
	}
	return s.feeds.Check(ctx, feeds.Request{Feed: r.Feed, After: after, Shards: r.Shards})
}

// feedPage is p with its cursors as position tokens of feed name.
func (s *Store) feedPage(p feeds.Page, name string) log.FeedPage {
	out, _ := s.feedPageIn(nil, nil, p, name)
	return out
}

// feedPageIn is feedPage with its events in buf's backing array when it
// has room; ends is scratch memory, returned for the next page.
func (s *Store) feedPageIn(buf []log.FeedEvent, ends []int, p feeds.Page, name string) (log.FeedPage, []int) {
	if cap(buf) < len(p.Events) {
		buf = make([]log.FeedEvent, len(p.Events))
	}
	out := log.FeedPage{Events: buf[:len(p.Events)], Next: s.feeds.Encode(p.Next, name),
		CompleteUpTo: p.CompleteUpTo, AtEnd: p.AtEnd}
	// The page's tokens are cut from one string (a few allocations a
	// page, not one an event), built in place: a string made from a
	// buffer of them was a copy, a twelfth of the bytes a catch-up read
	// allocated.
	var (
		all strings.Builder
		tok []byte
	)
	ends = ends[:0]
	for i := range p.Events {
		tok = s.feeds.AppendEncode(tok[:0], p.Events[i].Cursor, name)
		if i == 0 {
			all.Grow((len(tok) + 8) * len(p.Events))
		}
		all.Write(tok)
		ends = append(ends, all.Len())
	}
	tokens, start := all.String(), 0
	for i := range p.Events {
		out.Events[i] = log.FeedEvent{RecordedEvent: p.Events[i].RecordedEvent, Position: tokens[start:ends[i]]}
		start = ends[i]
	}
	return out, ends
}

// FeedPages implements log.FeedPager (feeds.Reader.Pages): each shard's
// log is read on across pages, not from the page's position again.
func (s *Store) FeedPages(ctx context.Context, r log.FeedRead) (log.FeedPages, error) {
	name := r.Feed.String()
	if _, err := log.ParseFeedPath(name); err != nil {
		return nil, err
	}
	after, err := s.feeds.Decode(r.After, name)
	if err != nil {
		return nil, err
	}
	ps, err := s.feeds.Pages(ctx, feeds.Request{Feed: r.Feed, After: after, Shards: r.Shards})
	if err != nil {
		return nil, err
	}
	return &feedPages{s: s, ps: ps, name: name}, nil
}

type feedPages struct {
	s    *Store
	ps   *feeds.Pages
	name string
	// spare: the last two pages' events, reused as feeds.Pages reuses
	// its own (log.FeedPages).
	spare [2][]log.FeedEvent
	turn  int
	ends  []int // feedPageIn's scratch
}

func (p *feedPages) Next(limit, maxBytes int) (log.FeedPage, error) {
	pg, err := p.ps.Next(limit, maxBytes)
	if err != nil {
		return log.FeedPage{}, err
	}
	out, ends := p.s.feedPageIn(p.spare[p.turn], p.ends, pg, p.name)
	p.ends = ends
	clear(out.Events[len(out.Events):cap(out.Events)]) // let an older page's data go
	p.spare[p.turn], p.turn = out.Events[:0], 1-p.turn
	return out, nil
}

func (p *feedPages) Close() { p.ps.Close() }

// FeedEnd implements log.FeedStore: the end of every shard's log now
// (feeds.Reader.End), the same for every feed.
func (s *Store) FeedEnd(ctx context.Context, feed log.Feed) (string, error) {
	name := feed.String()
	if _, err := log.ParseFeedPath(name); err != nil {
		return "", err
	}
	c, err := s.feeds.End(ctx)
	if err != nil {
		return "", err
	}
	return s.feeds.Encode(c, name), nil
}

// WatchFeeds implements log.FeedWatcher: the channel receives a value
// after this instance commits (its shards' records) or an append it
// forwarded was committed, at most once per feedWakeEvery. Other
// instances' appends are not seen: subscribers poll for them.
func (s *Store) WatchFeeds() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w := &s.feedWatchers
	w.mu.Lock()
	if w.chs == nil {
		w.chs = make(map[chan struct{}]struct{})
	}
	w.chs[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.chs, ch)
	}
}

// feedWakeEvery spaces out the wake-ups of feed subscribers. A woken
// subscriber reads every shard's log; under a steady load commits come
// far more often than that is worth, so wake-ups within this interval
// are merged into one at its end (never dropped).
const feedWakeEvery = 20 * time.Millisecond

// feedWatchers wakes feed subscriptions on this instance's commits.
type feedWatchers struct {
	mu      sync.Mutex
	chs     map[chan struct{}]struct{}
	last    time.Time // of the last wake-up
	pending bool      // a wake-up is scheduled
}

// notify wakes every watcher now, or at the end of the interval that
// started with the last wake-up: after the commit it reports, either way.
func (w *feedWatchers) notify(int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.chs) == 0 || w.pending {
		return
	}
	if wait := feedWakeEvery - time.Since(w.last); wait > 0 {
		w.pending = true
		time.AfterFunc(wait, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.pending = false
			w.wake()
		})
		return
	}
	w.wake()
}

// wake signals every watcher; w.mu is held.
func (w *feedWatchers) wake() {
	w.last = time.Now()
	for ch := range w.chs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
