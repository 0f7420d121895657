package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/record"
)

// httpPageSize is the page of the paged JSON read: the server's maximum.
const httpPageSize = 1000

// replayRun holds what the replay scenario works on.
type replayRun struct {
	e       *runEnv
	client  *http.Client
	session *gocql.Session
	stream  string
	head    int64
	// feedEvents is what the feed-ndjson read expects to count at least
	// (0: no feed read).
	feedEvents int64
	// wire counts the response bytes the HTTP reads received, before
	// decoding (--accept-encoding): reset before each measured read.
	wire atomic.Int64
}

// The raw reads' statements, as internal/cassandra/streams sends them
// (schema/schema.cql stream_buckets, stream_events; TestRawStatements
// checks they stay the server's): a stream's buckets newest first, and the
// chunk rows of one bucket, each holding several events in one blob.
const (
	cqlRawBuckets = `SELECT bucket, first_version, opened_at FROM stream_buckets WHERE stream = ?`
	cqlReadChunks = `SELECT first_version, last_version, time, record FROM stream_events WHERE stream = ? AND bucket = ? AND last_version >= ? AND last_version <= ?`
)

// readChunks reads one bucket of the shard layout, decoding each chunk
// row's events in order.
func (rr *replayRun) readChunks(ctx context.Context, b rawBucket, fn func(*rawEvent) error) error {
	iter := rr.session.Query(cqlReadChunks, rr.stream, b.number, b.first, int64(math.MaxInt64)).
		WithContext(ctx).Idempotent(true).PageSize(rr.e.cfg.RawPageSize).Iter()
	var (
		last, first int64
		at          time.Time
		body        []byte
		ev          rawEvent
	)
	chunk := func(first int64, at time.Time, body []byte) error {
		apps, err := record.DecodeChunkBody(body)
		if err != nil {
			return fmt.Errorf("chunk at %d: %w", first, err)
		}
		v := first
		for _, a := range apps {
			for _, e := range a.Events {
				ev = rawEvent{version: v, id: [16]byte(e.ID), typ: e.Type, time: at, data: e.Data, metadata: e.Metadata}
				if err := fn(&ev); err != nil {
					return err
				}
				v++
			}
		}
		return nil
	}
	for iter.Scan(&first, &last, &at, &body) {
		// A row is a chunk or a run of them (record.AppendRun). The stream
		// is written once by one owner: no row holds another's chunks.
		var err error
		if record.IsRun(body) {
			err = record.DecodeRun(body, first, last, func(p *record.Part) error {
				return chunk(p.FirstVersion, time.UnixMilli(p.Time), p.Body)
			})
		} else {
			err = chunk(first, at, body)
		}
		if err != nil {
			iter.Close()
			return err
		}
		body = nil // the decoded events alias it
	}
	return iter.Close()
}

// runReplay builds (or reuses) one long stream and reads it back four
// ways, interleaved --repeat times: NDJSON (the server's replay path),
// paged JSON (limit=1000 following next: the naive client), raw gocql
// paged (buckets in sequence) and raw gocql bucket-parallel (the ceiling).
// Then it times state loads with a snapshot at most 1,000 events behind
// the head.
func runReplay(ctx context.Context, e *runEnv) (*Result, error) {
	c := e.cfg
	rr := &replayRun{e: e, client: newHTTPClient(c.BuildConcurrency + 2)}
	if err := checkServer(ctx, rr.client, c.URL); err != nil {
		return nil, err
	}
	session, err := openRawSession(c, c.Keyspace, c.Parallel+1)
	if err != nil {
		return nil, err
	}
	defer session.Close()
	rr.session = session
	res := &Result{}

	if c.Stream != "" {
		rr.stream = c.Stream
		var info struct {
			Version int64 `json:"version"`
		}
		if err := getJSON(ctx, rr.client, c.URL, "/v1/streams/"+url.PathEscape(c.Stream), &info); err != nil {
			return nil, fmt.Errorf("stream %s: %w", c.Stream, err)
		}
		rr.head = info.Version
		if rr.head == 0 {
			return nil, fmt.Errorf("stream %s has no events", c.Stream)
		}
		res.Notes = append(res.Notes, fmt.Sprintf("reused stream %s at version %d", rr.stream, rr.head))
	} else {
		rr.stream = runPrefix("replay", e.started)
		ph, err := rr.build(ctx, c.Events)
		res.Phases = append(res.Phases, ph)
		if err != nil {
			return res, err
		}
		rr.head = int64(c.Events)
	}
	// A stream read through the server first (the shard layout writes a
	// stream's partitions behind the commit; a read has them written), so
	// the raw reads see every event.
	var info struct {
		Version int64 `json:"version"`
	}
	if err := getJSON(ctx, rr.client, c.URL, "/v1/streams/"+url.PathEscape(rr.stream), &info); err != nil {
		return res, fmt.Errorf("stream %s: %w", rr.stream, err)
	}
	if c.FeedStreams > 0 && c.Stream == "" {
		ph, err := rr.buildSpread(ctx, c.Events, c.FeedStreams)
		res.Phases = append(res.Phases, ph)
		if err != nil {
			return res, err
		}
		rr.feedEvents = 2 * int64(c.Events)
	}
	var snapAt int64
	if c.SnapshotEvery > 0 {
		if snapAt, err = rr.putSnapshots(ctx, c.Stream == ""); err != nil {
			return res, err
		}
	}

	reads := []struct {
		name string
		fn   func(context.Context, *recorder) error
	}{
		{"ndjson", rr.readNDJSON},
		{"paged-json", rr.readPaged},
		{"raw-paged", rr.readRawSequential},
		{"raw-parallel", rr.readRawParallel},
	}
	if rr.feedEvents > 0 {
		reads = append(reads, struct {
			name string
			fn   func(context.Context, *recorder) error
		}{"feed-ndjson", rr.readFeed})
	}
	// The node compacts what was just written for a minute or more; the
	// read that came first paid for it (Cassandra at 0.8 µs an event
	// against 0.1–0.2 for the same read a round later).
	if c.CompactionWait > 0 {
		waited, busy, err := waitCompactions(ctx, session, c.CompactionWait)
		if err != nil {
			return res, fmt.Errorf("the node's compactions: %w", err)
		}
		res.Notes = append(res.Notes, fmt.Sprintf("waited %.0f s for the node's compactions before the reads (%s)", waited.Seconds(), busy))
	}
	// One unmeasured read first, so the first measured read does not pay
	// alone for a cold page cache; then the order rotates each round.
	fmt.Fprintf(e.stderr, "warm-up read of %s (%d events)\n", rr.stream, rr.head)
	if err := rr.readRawParallel(ctx, newRecorder(time.Now())); err != nil {
		return res, fmt.Errorf("warm-up read: %w", err)
	}
	for rep := 1; rep <= c.Repeat && ctx.Err() == nil; rep++ {
		round := 0
		if c.Repeat > 1 {
			round = rep
		}
		for i := range reads {
			r := reads[(i+rep-1)%len(reads)]
			rr.wire.Store(0)
			ph, err := rr.measureRead(ctx, r.name, round, r.fn)
			if wire := rr.wire.Load(); wire > 0 && ph.Bytes > 0 {
				if ph.Extra == nil {
					ph.Extra = map[string]float64{}
				}
				ph.Extra["wire_bytes"] = float64(wire)
				enc := c.AcceptEncoding
				if enc == "" {
					enc = "plain"
				}
				res.Notes = append(res.Notes, fmt.Sprintf("%s: %.1f MB on the wire (%s) for %.1f MB of events: %.3f",
					phaseLabel(ph), float64(wire)/1e6, enc, float64(ph.Bytes)/1e6, float64(wire)/float64(ph.Bytes)))
			}
			res.Phases = append(res.Phases, ph)
			if err != nil {
				return res, fmt.Errorf("%s read: %w", r.name, err)
			}
		}
	}
	if c.SnapshotEvery > 0 && ctx.Err() == nil {
		ph, err := rr.measureRead(ctx, "state", 0, rr.loadStates)
		ph.Kind = "state"
		if ph.Extra == nil {
			ph.Extra = map[string]float64{}
		}
		ph.Extra["snapshot_version"] = float64(snapAt)
		ph.Extra["events_behind"] = float64(rr.head - snapAt)
		res.Phases = append(res.Phases, ph)
		if err != nil {
			return res, fmt.Errorf("state load: %w", err)
		}
	}
	res.Ratios = replayRatios(res.Phases)
	return res, nil
}

// openRawSession opens a gocql session with the store's settings on
// keyspace.
func openRawSession(c *Config, keyspace string, conns int) (*gocql.Session, error) {
	o := cassandra.DefaultOptions()
	o.Hosts = c.CassandraHosts
	o.Keyspace = keyspace
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster, err := cassandra.NewClusterConfig(o)
	if err != nil {
		return nil, err
	}
	cluster.NumConns = max(2, conns)
	cluster.Timeout = 30 * time.Second
	s, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cassandra session on %s: %w", keyspace, err)
	}
	return s, nil
}

// buildAppendSize is the events per append while building: 1000 (the
// server's limit), fewer for large events so a body stays under the
// server's 4 MiB.
func buildAppendSize(eventSize int) int {
	return min(1000, (3<<20)/(eventSize*11/10+100))
}

// build appends n events to the stream through the HTTP API,
// --build-concurrency appends in flight with expected_version any. The
// server serialises appends to one stream, so concurrency only overlaps
// request decoding with the writes; versions end up gapless 1..n either
// way, which is all replay needs.
func (rr *replayRun) build(ctx context.Context, n int) (Phase, error) {
	size := buildAppendSize(rr.e.cfg.EventSize)
	appends := (n + size - 1) / size
	fmt.Fprintf(rr.e.stderr, "building %s: %d events in %d appends of %d\n", rr.stream, n, appends, size)
	return rr.appendAll(ctx, "build", appends, payloadSeed, func(i int) (string, int) {
		return rr.stream, min(size, n-i*size)
	})
}

// buildSpread appends n events to streams new streams (of the run's
// category "spread"), n/streams to each in appends of at most
// buildAppendSize: the catch-up read's other half, events from many
// streams in the all feed.
func (rr *replayRun) buildSpread(ctx context.Context, n, streams int) (Phase, error) {
	per := max(1, n/streams)
	size := min(per, buildAppendSize(rr.e.cfg.EventSize))
	perStream := (per + size - 1) / size
	prefix := "spread-" + strings.ReplaceAll(runPrefix("s", rr.e.started), "-", "")
	fmt.Fprintf(rr.e.stderr, "building %d streams %s-*: %d events each, in appends of %d\n", streams, prefix, per, size)
	// Append i is the (i / streams)-th of stream i % streams: streams take
	// their appends in turn, in order.
	return rr.appendAll(ctx, "build-spread", streams*perStream, payloadSeed+1, func(i int) (string, int) {
		return fmt.Sprintf("%s-%d", prefix, i%streams), min(size, per-(i/streams)*size)
	})
}

// appendAll sends appends 0..appends-1 as phase name, --build-concurrency
// in flight, expected_version any and fresh client ids: append i goes to
// the stream at(i) names, with its k events.
func (rr *replayRun) appendAll(ctx context.Context, name string, appends int, seed uint64, at func(i int) (stream string, k int)) (Phase, error) {
	c := rr.e.cfg
	payloads := newPayloads(c.EventSize, payloadPoolSize, seed)
	var (
		nextAppend atomic.Int64
		firstErr   error
		errOnce    sync.Once
	)
	ph, _ := rr.measureRead(ctx, name, 0, func(ctx context.Context, rec *recorder) error {
		var wg sync.WaitGroup
		for w := range c.BuildConcurrency {
			wg.Go(func() {
				next := w * 97 % len(payloads)
				var body []byte
				for {
					i := int(nextAppend.Add(1)) - 1
					if i >= appends || ctx.Err() != nil {
						return
					}
					stream, k := at(i)
					ids := make([]uuid.UUID, k)
					evs := make([]*payload, k)
					bytes := 0
					for j := range k {
						ids[j] = uuid.Must(uuid.NewV7())
						evs[j] = &payloads[next]
						bytes += evs[j].Size()
						next = (next + 1) % len(payloads)
					}
					body = encodeAppend(body[:0], expectedAny, ids, evs)
					t0 := time.Now()
					err := appendRetrying(ctx, rr.client, c.URL, stream, body)
					now := time.Now()
					if err != nil {
						rec.latency(now, now.Sub(t0), code(err), err)
						errOnce.Do(func() { firstErr = err })
						return
					}
					rec.live.Add(int64(k))
					rec.count(now, k, bytes)
					rec.latency(now, now.Sub(t0), "", nil)
				}
			})
		}
		wg.Wait()
		return firstErr
	})
	ph.Kind = "build"
	if firstErr != nil {
		return ph, fmt.Errorf("%s: %w", name, firstErr)
	}
	return ph, nil
}

// readFeed reads the all feed from its beginning to its end as NDJSON
// (the catch-up read that rebuilds a projection), checking it holds at
// least rr.feedEvents events.
func (rr *replayRun) readFeed(ctx context.Context, rec *recorder) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rr.e.cfg.URL+"/v1/feeds/all", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := rr.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readAnswer(resp, nil)
	}
	body, err := rr.decoded(resp)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	var total int64
	n, size := 0, 0
	for sc.Scan() {
		n++
		size += len(sc.Bytes()) + 1
		if n == 1000 {
			total += int64(n)
			rec.live.Add(int64(n))
			rec.count(time.Now(), n, size)
			n, size = 0, 0
		}
	}
	total += int64(n)
	rec.live.Add(int64(n))
	rec.count(time.Now(), n, size)
	if err := sc.Err(); err != nil {
		return fmt.Errorf("feed cut after %d events: %w", total, err)
	}
	if total < rr.feedEvents {
		return fmt.Errorf("the all feed holds %d events, want at least %d", total, rr.feedEvents)
	}
	return nil
}

// appendRetrying sends a build append to stream, resending the same body
// (same ids: a resend is recognised as a retry) after an unknown outcome.
func appendRetrying(ctx context.Context, client *http.Client, base, stream string, body []byte) error {
	var err error
	for attempt := 0; attempt <= 3; attempt++ {
		actx, cancel := context.WithTimeout(ctx, appendTimeout)
		err = postAppend(actx, client, base, stream, body, nil)
		cancel()
		switch code(err) {
		case "outcome_unknown", "unavailable", "transport", "timeout":
			if err != nil && ctx.Err() == nil {
				continue
			}
		}
		return err
	}
	return err
}

// measureRead runs fn as one phase: progress lines, process accounting,
// and the phase's total time as its one latency sample (fn records its
// own when it has finer ones, e.g. per page).
func (rr *replayRun) measureRead(ctx context.Context, name string, round int, fn func(context.Context, *recorder) error) (Phase, error) {
	e := rr.e
	label := name
	if round > 0 {
		label = fmt.Sprintf("%s #%d", name, round)
	}
	start := time.Now()
	rec := newRecorder(start)
	stop := startProgress(e.stderr, label, rec, 0)
	meter := startMeter(e.procs)
	err := fn(ctx, rec)
	end := time.Now()
	stop()
	if rec.hist.TotalCount() == 0 {
		rec.latency(end, end.Sub(start), code(err), err)
	}
	ph := rec.phase(name, "read", end)
	ph.Process = meter.stop(ph.Events)
	ph.Round = round
	ph.OffsetS = start.Sub(e.started).Seconds()
	// The reads of the stream must see it whole (readFeed checks its own
	// count; builds and state loads count other things).
	if err == nil && !strings.HasPrefix(name, "build") && name != "state" && name != "feed-ndjson" && ph.Events != rr.head {
		err = fmt.Errorf("read %d events, the stream has %d", ph.Events, rr.head)
		if ph.Events == 0 && strings.HasPrefix(name, "raw") {
			err = fmt.Errorf("%w (is --keyspace %s the server's keyspace?)", err, e.cfg.Keyspace)
		}
	}
	return ph, err
}

// readNDJSON reads the whole stream as NDJSON and checks that the lines
// carry versions 1..head in order.
func (rr *replayRun) readNDJSON(ctx context.Context, rec *recorder) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rr.e.cfg.URL+"/v1/streams/"+url.PathEscape(rr.stream)+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := rr.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readAnswer(resp, nil)
	}
	body, err := rr.decoded(resp)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	want := int64(1)
	n, size := 0, 0
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := eventVersion(line); !ok || v != want {
			return fmt.Errorf("ndjson line %d: version %d, want %d", want, v, want)
		}
		want++
		n++
		size += len(line) + 1
		if n == 1000 {
			rec.live.Add(int64(n))
			rec.count(time.Now(), n, size)
			n, size = 0, 0
		}
	}
	rec.live.Add(int64(n))
	rec.count(time.Now(), n, size)
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ndjson cut after version %d: %w", want-1, err)
	}
	return nil
}

// eventVersion finds "version":N in an event's JSON as the server writes
// it (id, type, then version): a cheap check that keeps the client from
// spending on full decoding the CPU the server needs.
func eventVersion(ev []byte) (int64, bool) {
	const key = `,"version":`
	i := bytes.Index(ev[:min(len(ev), 512)], []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := ev[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return v, err == nil
}

// readPaged reads the stream a page of 1000 at a time, each request from
// the previous page's next: the naive client. Each page is one latency
// sample.
func (rr *replayRun) readPaged(ctx context.Context, rec *recorder) error {
	from := int64(1)
	var buf bytes.Buffer
	for from > 0 {
		t0 := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			fmt.Sprintf("%s/v1/streams/%s/events?from=%d&limit=%d", rr.e.cfg.URL, url.PathEscape(rr.stream), from, httpPageSize), nil)
		if err != nil {
			return err
		}
		resp, err := rr.do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			err := readAnswer(resp, nil)
			resp.Body.Close()
			return err
		}
		rd, err := rr.decoded(resp)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(rd)
		}
		resp.Body.Close()
		if err != nil {
			return err
		}
		body := buf.Bytes()
		next, ok := pageNext(body)
		if !ok {
			return fmt.Errorf("page from %d: no next in %d bytes", from, len(body))
		}
		if v, ok := eventVersion(body[min(len(body), 64):]); !ok || v != from {
			return fmt.Errorf("page from %d starts at version %d", from, v)
		}
		n := next - from
		if next == 0 {
			n = rr.head - from + 1
		}
		now := time.Now()
		rec.live.Add(n)
		rec.count(now, int(n), len(body))
		rec.latency(now, now.Sub(t0), "", nil)
		from = next
	}
	return nil
}

// pageNext reads the "next" member that ends a page: `],"next":N}` or
// `],"next":null}`; 0 means null.
func pageNext(body []byte) (int64, bool) {
	body = bytes.TrimRight(body, "\n")
	i := bytes.LastIndex(body, []byte(`"next":`))
	if i < 0 || !bytes.HasSuffix(body, []byte("}")) {
		return 0, false
	}
	v := string(body[i+len(`"next":`) : len(body)-1])
	if v == "null" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// rawBucket is one row of stream_buckets.
type rawBucket struct{ number, first int64 }

func (rr *replayRun) buckets(ctx context.Context) ([]rawBucket, error) {
	iter := rr.session.Query(cqlRawBuckets, rr.stream).WithContext(ctx).Idempotent(true).Iter()
	var (
		out []rawBucket
		b   rawBucket
	)
	var opened time.Time
	for iter.Scan(&b.number, &b.first, &opened) {
		out = append(out, b)
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 { // newest first → ascending
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// rawEvent is a row as the server reads it for replay.
type rawEvent struct {
	version  int64
	id       [16]byte
	typ      string
	time     time.Time
	data     []byte
	metadata []byte
}

// size is the row's payload bytes, the raw reads' MB/s.
func (r *rawEvent) size() int { return 8 + 16 + len(r.typ) + 8 + len(r.data) + len(r.metadata) }

// readBucket reads one bucket in pages of --raw-page-size with the
// server's replay statement, calling fn for each event in order.
func (rr *replayRun) readBucket(ctx context.Context, b rawBucket, fn func(*rawEvent) error) error {
	return rr.readChunks(ctx, b, fn)
}

// tally counts events into rec in chunks, checking versions are 1..head in
// order.
type tally struct {
	rec      *recorder
	want     int64
	n, bytes int
}

func (t *tally) add(ev *rawEvent) error {
	if ev.version != t.want {
		return fmt.Errorf("raw read: version %d, want %d", ev.version, t.want)
	}
	t.want++
	t.n++
	t.bytes += ev.size()
	if t.n == 1000 {
		t.flush()
	}
	return nil
}

func (t *tally) flush() {
	t.rec.live.Add(int64(t.n))
	t.rec.count(time.Now(), t.n, t.bytes)
	t.n, t.bytes = 0, 0
}

// readRawSequential reads bucket after bucket, page by page: what a
// simple gocql client does.
func (rr *replayRun) readRawSequential(ctx context.Context, rec *recorder) error {
	bs, err := rr.buckets(ctx)
	if err != nil {
		return err
	}
	t := &tally{rec: rec, want: 1}
	for _, b := range bs {
		if err := rr.readBucket(ctx, b, t.add); err != nil {
			return err
		}
	}
	t.flush()
	return nil
}

// rawChunk is a run of rows handed from a bucket reader to the consumer.
const rawChunk = 1000

// readRawParallel reads up to --parallel buckets at once and hands their
// rows to one consumer in version order: the best a client can do with
// the schema. Each bucket's reader fills a small bounded channel of
// chunks, so memory stays at about parallel × 4 chunks.
func (rr *replayRun) readRawParallel(ctx context.Context, rec *recorder) error {
	bs, err := rr.buckets(ctx)
	if err != nil {
		return err
	}
	// Readers end (cancel) before they are waited for (wg.Wait): defers
	// run in reverse.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		rows []rawEvent
		err  error
	}
	chans := make([]chan result, len(bs))
	for i := range chans {
		chans[i] = make(chan result, 4)
	}
	sem := make(chan struct{}, rr.e.cfg.Parallel)
	wg.Go(func() {
		for i, b := range bs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				ch := chans[i]
				defer close(ch)
				rows := make([]rawEvent, 0, rawChunk)
				send := func() bool {
					select {
					case ch <- result{rows: rows}:
						rows = make([]rawEvent, 0, rawChunk)
						return true
					case <-ctx.Done():
						return false
					}
				}
				err := rr.readBucket(ctx, b, func(ev *rawEvent) error {
					rows = append(rows, *ev)
					// The driver hands fresh slices per row: keep them.
					ev.data, ev.metadata = nil, nil
					if len(rows) == rawChunk && !send() {
						return ctx.Err()
					}
					return nil
				})
				if err != nil {
					select {
					case ch <- result{err: err}:
					case <-ctx.Done():
					}
					return
				}
				if len(rows) > 0 {
					send()
				}
			})
		}
	})
	t := &tally{rec: rec, want: 1}
	for i := range bs {
		for r := range chans[i] {
			if r.err != nil {
				return r.err
			}
			for j := range r.rows {
				if err := t.add(&r.rows[j]); err != nil {
					return err
				}
			}
		}
		<-sem // bucket i consumed: the next may start
	}
	t.flush()
	return nil
}

// waitCompactions waits until the node the session asks runs no
// compaction (system_views.sstable_tasks, a node's own view), at most max,
// and says how long it waited and whether compactions were still running
// then.
func waitCompactions(ctx context.Context, session *gocql.Session, max time.Duration) (time.Duration, string, error) {
	start := time.Now()
	for {
		var kind string
		running := 0
		iter := session.Query(`SELECT kind FROM system_views.sstable_tasks`).WithContext(ctx).Idempotent(true).Iter()
		for iter.Scan(&kind) {
			running++
		}
		if err := iter.Close(); err != nil {
			return time.Since(start), "", err
		}
		switch {
		case running == 0:
			return time.Since(start), "none running", nil
		case time.Since(start) >= max:
			return time.Since(start), fmt.Sprintf("%d still running", running), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
