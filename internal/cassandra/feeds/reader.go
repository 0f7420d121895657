package feeds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

// The log's rows and statics are read through shardlog (Rows, Statics).
const (
	// schema/migrations/0001_initial.cql: keyspace_config.
	cqlLayout = `SELECT shards, segment_rows, token_secret FROM keyspace_config WHERE id = 0`
	// schema/migrations/0001_initial.cql: shard_log. The commit time of
	// one row: only read when a segment's floor static is unset.
	cqlRowTime = `SELECT time FROM shard_log WHERE shard = ? AND segment = ? AND seq = ?`
)

// Options tune a Reader. Zero fields take the defaults noted.
type Options struct {
	// DefaultLimit is the events of a page when Request.Limit is 0.
	// Default 1,000.
	DefaultLimit int
	// MaxLimit caps Request.Limit. Default 10,000.
	MaxLimit int
	// ScanRows bounds the log rows one Read passes, whether they hold
	// selected events or not: a feed whose events are rare answers a page
	// with few events (or none) and a cursor moved past the rows it
	// scanned. Default 10,000.
	ScanRows int
	// PageSize is the most log rows one query reads. A shard's queries
	// start small and double up to it, so a page does not read far past
	// what it returns. Default 512.
	PageSize int
	// ChunkBytes ends a shard's query early once it has read this many
	// record bytes, decompressed (rows carry whole commit groups, up to a
	// few MiB), and bounds the decoded records a continuous read's
	// ranges in flight hold.
	// Default 8 MiB.
	ChunkBytes int
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = 1000
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = 10_000
	}
	if o.ScanRows <= 0 {
		o.ScanRows = 10_000
	}
	if o.PageSize <= 0 {
		o.PageSize = 512
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 8 << 20
	}
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	if o.DefaultLimit > o.MaxLimit {
		return fmt.Errorf("feeds: default limit %d above the max limit %d", o.DefaultLimit, o.MaxLimit)
	}
	return nil
}

// Layout is what a Reader needs from keyspace_config.
type Layout struct {
	Shards      int
	SegmentRows int64
	Secret      []byte
}

// ReadLayout reads the keyspace's layout (written once by the migrator).
func ReadLayout(ctx context.Context, session *gocql.Session) (Layout, error) {
	var l Layout
	err := session.Query(cqlLayout).WithContext(ctx).Idempotent(true).Scan(&l.Shards, &l.SegmentRows, &l.Secret)
	if errors.Is(err, gocql.ErrNotFound) {
		return Layout{}, errors.New("feeds: the keyspace has no shard layout: run server migrate")
	}
	if err != nil {
		return Layout{}, cql.ReadErr("read keyspace layout", err)
	}
	return l, nil
}

// Reader reads the feeds of one keyspace. Safe for concurrent use.
type Reader struct {
	*Tokens
	session *gocql.Session
	log     *shardlog.Log
	rows    int64 // segment rows
	o       Options
	// perRow is, per shard, the events per log row the last read of the
	// all feed saw (in thousandths; 0: unknown). A read's first query of
	// a shard is sized from it: without it every page of a catch-up
	// started at one row and doubled, several round trips per page.
	perRow []atomic.Int64
	bufs   bufPool // continuous reads' record buffers
	// fetchHook, if set (a test seam: export_test.go), is called by each
	// fetch as it starts, on its goroutine.
	fetchHook func(shard int)
}

// New returns a reader over session (at a quorum consistency); serial is
// the serial consistency of the keyspace's conditional writes; shards,
// segmentRows and secret are the keyspace's layout (ReadLayout). o may be
// zero (defaults).
func New(session *gocql.Session, serial gocql.Consistency, shards int, segmentRows int64, secret []byte, o Options) (*Reader, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if segmentRows < 1 {
		return nil, fmt.Errorf("feeds: segment rows %d, want at least 1", segmentRows)
	}
	t, err := NewTokens(secret, shards)
	if err != nil {
		return nil, err
	}
	return &Reader{Tokens: t, session: session, log: shardlog.New(session, serial), rows: segmentRows, o: o,
		perRow: make([]atomic.Int64, shards)}, nil
}

// Shards is the keyspace's shard count: the length of its cursors.
func (r *Reader) Shards() int { return r.shards }

// Request is one read of a feed.
type Request struct {
	// Feed selects the events: log.AllFeed, log.CategoryFeed(c) (streams
	// whose id before the first '-' is c), log.TypeFeed(t).
	Feed log.Feed
	// After is where the read starts: the zero Cursor, a Page's Next or an
	// Event's Cursor (or a decoded token).
	After Cursor
	// Limit is the most events returned: 0 takes Options.DefaultLimit;
	// above Options.MaxLimit it is lowered to it.
	Limit int
	// MaxBytes, if positive, ends the page once its events reach about
	// that many bytes (EventBytes; at least one event): a page never holds
	// more than MaxBytes and one event. 0: only Limit bounds it.
	MaxBytes int
	// Shards, if not nil, reads only these shards (consumer groups); the
	// cursor's positions in the others pass through unchanged. nil: all.
	Shards []int
}

// Event is an event read from a feed.
type Event struct {
	log.RecordedEvent // Time is its log row's commit time
	// Where it is: event Index of log row Seq of shard Shard.
	Shard int
	Seq   int64
	Index int
	// Cursor is the position just after this event: reading on from it
	// returns the events after it.
	Cursor Cursor
}

// Page is the answer to a Read.
type Page struct {
	// Events of the feed after the request's cursor, at most Limit, merged
	// from the selected shards by (commit time, shard, seq, index).
	Events []Event
	// Next is where the next read starts. It is at or past the last
	// event's Cursor: past it only over rows and events the feed does not
	// select.
	Next Cursor
	// CompleteUpTo: every event of the selected shards committed at or
	// before CompleteUpTo is before Next, and so was returned by this page
	// or by the reads that led to its request's cursor. This holds for
	// events committed after the read too, because commit times never
	// decrease along a shard's log and the log has no holes. It is exact
	// per shard: for a shard read to its end it is just under the later of
	// the last commit's time and the log's floor (a later commit may share
	// that millisecond; an idle owner raises the floor every second, so an
	// idle shard does not hold CompleteUpTo at its last commit), for
	// another just under the time of the first row not passed.
	//
	// A shard with no commit yet counts with the floor its owner opened
	// its log with (the owner's clock at its takeover, raised every second
	// while it stays idle); a shard whose log was never opened (no
	// instance took it yet) may later commit at any time, so a read that
	// selects it promises nothing. The zero time means no promise.
	// Commit times have millisecond precision.
	CompleteUpTo time.Time
	// AtEnd: Next is at the end of every selected shard's log as the read
	// saw it; reading on returns only events committed later.
	AtEnd bool
}

// filter is a Request's Feed, checked.
type filter struct {
	kind log.FeedKind
	name string
}

// Read returns the next page of req.Feed after req.After. It reads the
// selected shards in parallel, each from its position, a growing chunk of
// rows per query, and merges them (see Page). Errors: *log.ValidationError
// (bad feed or shards; code invalid_feed or invalid_request); ErrBadToken
// (a cursor of another shard count); ErrFuturePosition (a position of a
// selected shard past its committed log, or inside a row past its
// events); log.ErrUnavailable (storage); record.ErrCorrupt (a log record
// that does not decode).
func (r *Reader) Read(ctx context.Context, req Request) (Page, error) {
	// A fetch's panic cancels the read, and Wait raises it here: on a
	// fetch's goroutine it ended the process.
	g, ctx := fanout.WithContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer g.Wait() // after cancel: no fetcher outlives the read
	defer cancel()
	m, err := r.open(ctx, g, req, false)
	if err != nil {
		return Page{}, err
	}
	return m.run(ctx)
}

// Pages reads req.Feed page after page from req.After, as consecutive
// Reads from each page's Next would, but keeps each shard's fetch running
// across pages: rows fetched past one page serve the next instead of
// being read again, and no page starts its queries over. For a read to
// the end of the feed (an NDJSON catch-up); the fetches stop at the end
// of the logs as they see it, so the last page is AtEnd. req.Limit and
// req.MaxBytes are ignored (Next takes them); Options.ScanRows still
// bounds the rows one page passes. Close it when done.
func (r *Reader) Pages(ctx context.Context, req Request) (*Pages, error) {
	g, ctx := fanout.WithContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	p := &Pages{cancel: cancel, g: g}
	m, err := r.open(ctx, g, req, true)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.m, p.ctx = m, ctx
	return p, nil
}

// Pages is a feed read page after page (Reader.Pages). Not safe for
// concurrent use.
type Pages struct {
	m      *merge
	ctx    context.Context
	cancel context.CancelFunc
	g      *fanout.Group // the fetches
	closed bool
	end    bool
	err    error // the first error: a fetch that failed has stopped
	// spare holds the events of the last two pages, whose backing arrays
	// the next pages reuse (log.FeedPages: a page is the caller's until
	// the second Next after it). A page of a catch-up read holds
	// thousands of events: allocating and clearing it anew, grown by
	// doubling, was a tenth of the read's CPU.
	spare [2][]Event
	// retired holds, like spare, the pooled buffers of the rows the last
	// two pages passed: their events may be in those pages.
	retired [2][][]byte
	// blocks holds, like spare, the arenas of the last two pages' cursors.
	blocks [2][][]ShardPos
	turn   int
}

// Next returns the next page: at most limit events (Options' default and
// cap apply), ended early at about maxBytes (0: no bound). After a page
// that is AtEnd, or an error, it returns the same again. A page's Events,
// their Cursors and the bytes of their Data and Metadata, are reused by
// the second Next after the one that returned it.
func (p *Pages) Next(limit, maxBytes int) (Page, error) {
	m := p.m
	switch {
	case p.err != nil:
		return Page{}, p.err
	case p.end:
		return Page{Next: NewCursor(m.pos), AtEnd: true}, nil
	}
	m.limit, m.maxBytes = m.r.limit(limit), maxBytes
	events := p.spare[p.turn]
	if cap(events) == 0 {
		events = make([]Event, 0, min(m.limit, 1024))
	}
	m.events, m.size, m.arena = events[:0], 0, nil
	m.blocks, m.used = p.blocks[p.turn], 0
	// The page of two Nexts ago is released: the buffers of the rows it
	// passed, which its events and earlier pages' alias, can be reused.
	for i, b := range p.retired[p.turn] {
		m.r.bufs.put(b)
		p.retired[p.turn][i] = nil
	}
	m.retired = p.retired[p.turn][:0]
	pg, err := m.run(p.ctx)
	p.retired[p.turn] = m.retired
	p.blocks[p.turn], m.blocks = m.blocks, nil
	if err != nil {
		p.err = err
		if _, ok := context.Cause(p.ctx).(*fanout.Panic); ok {
			p.Close() // a fetch panicked: raised here, not taken for an error
		}
		return Page{}, err
	}
	clear(pg.Events[len(pg.Events):cap(pg.Events)]) // let an older page's data go
	p.spare[p.turn], p.turn = pg.Events[:0], 1-p.turn
	p.end = pg.AtEnd
	return pg, nil
}

// Close stops the fetches and waits for them; a fetch's panic is raised
// here (by Next, when it ended a page's read), once.
func (p *Pages) Close() {
	if p.closed {
		return
	}
	p.closed = true
	p.cancel()
	p.g.Wait()
}

// limit is the events a page returns for a requested limit.
func (r *Reader) limit(limit int) int {
	switch {
	case limit <= 0:
		return r.o.DefaultLimit
	case limit > r.o.MaxLimit:
		return r.o.MaxLimit
	}
	return limit
}

// open checks req and starts a fetch per selected shard (in g, until ctx
// ends), returning the merge over them. A continuous read's fetches have no
// budget of rows or events: they run to the end of the logs, a chunk
// ahead of the merge.
func (r *Reader) open(ctx context.Context, g *fanout.Group, req Request, continuous bool) (*merge, error) {
	f, sel, err := r.check(req)
	if err != nil {
		return nil, err
	}
	limit := r.limit(req.Limit)
	rowsLeft, eventsLeft := r.o.ScanRows, limit
	if continuous {
		// No budget (and no overflow in fetch's arithmetic).
		rowsLeft, eventsLeft = 1<<40, 1<<40
		limit = r.o.MaxLimit
	}
	share := (limit + len(sel) - 1) / len(sel)
	m := &merge{r: r, shards: r.shards, limit: limit, maxBytes: req.MaxBytes, scanRows: r.o.ScanRows, pos: make([]ShardPos, r.shards),
		events: make([]Event, 0, min(limit, 1024))}
	for s := range m.pos {
		m.pos[s] = req.After.Shard(s)
	}
	for _, s := range sel {
		ch := make(chan batch)
		m.in = append(m.in, &input{shard: s, ch: ch})
		fe := &fetch{r: r, shard: s, f: f, next: m.pos[s].row(), skip: m.pos[s].Index,
			chunk: 1, share: share, rowsLeft: rowsLeft, eventsLeft: eventsLeft, out: ch}
		if continuous {
			fe.batch, fe.pool = share, &r.bufs
		}
		if f.kind == log.FeedAll {
			// Only the all feed keeps a hint: a filtered feed selects a
			// share of each row that depends on its name.
			if pr := r.perRow[s].Load(); pr > 0 {
				fe.chunk = min(r.o.PageSize, max(1, int(int64(share)*1000/pr)+1))
			}
		}
		g.Go(func() {
			if r.fetchHook != nil {
				r.fetchHook(s)
			}
			fe.run(ctx)
			if f.kind == log.FeedAll && fe.rows > 0 && fe.events > 0 {
				r.perRow[s].Store(int64(fe.events) * 1000 / int64(fe.rows))
			}
		})
	}
	return m, nil
}

// check refuses what open refuses before reading: a bad feed or shard
// selection, a cursor of another shard count or with negative positions.
// It returns the feed's filter and the selected shards.
func (r *Reader) check(req Request) (filter, []int, error) {
	f, err := checkFeed(req.Feed)
	if err != nil {
		return filter{}, nil, err
	}
	sel, err := r.selected(req.Shards)
	if err != nil {
		return filter{}, nil, err
	}
	if req.After.Len() != 0 && req.After.Len() != r.shards {
		return filter{}, nil, badPosition(ErrBadToken, fmt.Sprintf("position has %d shards, the keyspace %d", req.After.Len(), r.shards))
	}
	for s := 0; s < req.After.Len(); s++ {
		if p := req.After.Shard(s); p.Seq < 0 || p.Index < 0 {
			return filter{}, nil, badPosition(ErrBadToken, "position has a negative seq or index")
		}
	}
	return f, sel, nil
}

// Check refuses req as Read would before its first event, without reading
// any: a bad feed or shard selection (*log.ValidationError), a cursor of
// another shard count (ErrBadToken), or a position of a selected shard
// past its committed log (ErrFuturePosition), which it tells from the
// statics of the shard's log at the position (logEnd), read for each
// shard not at its start, in parallel. A position inside a row but past
// the row's events passes (only the row's record tells): a token is
// authenticated, so only one issued for another log at that seq is such.
func (r *Reader) Check(ctx context.Context, req Request) error {
	_, sel, err := r.check(req)
	if err != nil {
		return err
	}
	errs := make([]error, len(sel))
	var g fanout.Group // a read's panic is the caller's
	for i, s := range sel {
		p := req.After.Shard(s)
		if p.Seq <= 1 && p.Index == 0 {
			continue // the start: in every log
		}
		g.Go(func() {
			_, _, errs[i] = r.logEnd(ctx, s, p.row(), p.Index)
		})
	}
	g.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the first shard's: the same answer at every check
		}
	}
	return nil
}

func checkFeed(f log.Feed) (filter, error) {
	switch {
	case f.Kind == log.FeedAll && f.Name == "",
		(f.Kind == log.FeedCategory || f.Kind == log.FeedType) && f.Name != "":
		return filter{kind: f.Kind, name: f.Name}, nil
	}
	return filter{}, &log.ValidationError{Code: log.CodeInvalidFeed, Message: fmt.Sprintf("invalid feed %q", f.String())}
}

// selected returns the shards to read, ascending.
func (r *Reader) selected(shards []int) ([]int, error) {
	if shards == nil {
		sel := make([]int, r.shards)
		for s := range sel {
			sel[s] = s
		}
		return sel, nil
	}
	if len(shards) == 0 {
		return nil, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "no shard selected (nil reads all)"}
	}
	sel := slices.Clone(shards)
	slices.Sort(sel)
	for i, s := range sel {
		if s < 0 || s >= r.shards {
			return nil, &log.ValidationError{Code: log.CodeInvalidRequest, Message: fmt.Sprintf("shard %d out of range 0..%d", s, r.shards-1)}
		}
		if i > 0 && sel[i-1] == s {
			return nil, &log.ValidationError{Code: log.CodeInvalidRequest, Message: fmt.Sprintf("shard %d selected twice", s)}
		}
	}
	return sel, nil
}
