package catalog

import (
	"context"
	"strings"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
)

// schema/migrations/0002_discovery.cql: stream_catalog, stream_categories.
const (
	cqlStreamsAfter    = `SELECT stream, created FROM stream_catalog WHERE category = ? AND stream > ? LIMIT ?`
	cqlStreamsFrom     = `SELECT stream, created FROM stream_catalog WHERE category = ? AND stream >= ? LIMIT ?`
	cqlCategoriesAfter = `SELECT category FROM stream_categories WHERE id = 0 AND category > ? LIMIT ?`
	cqlCategoriesFrom  = `SELECT category FROM stream_categories WHERE id = 0 AND category >= ? LIMIT ?`
	cqlCountStreams    = `SELECT stream FROM stream_catalog WHERE category = ?`
)

// headConcurrency bounds the head reads of one listing page.
const headConcurrency = 16

// ListStreams implements log.Catalog.ListStreams: the catalog rows in
// (category, stream) order, then the head of each listed stream.
func (c *Catalog) ListStreams(ctx context.Context, q log.StreamQuery) (log.StreamPage, error) {
	if err := ValidateQuery(q); err != nil {
		return log.StreamPage{}, err
	}
	var (
		page    log.StreamPage
		scanned int
		more    bool
	)
	// take is called with the catalog rows in order; false stops the scan.
	take := func(stream string, created time.Time) bool {
		scanned++
		if q.Prefix != "" && !strings.HasPrefix(stream, q.Prefix) {
			return true
		}
		id := log.StreamID(stream)
		if q.Visible == nil || q.Visible(id) {
			if len(page.Streams) == q.Limit {
				more = true
				return false
			}
			page.Streams = append(page.Streams, log.StreamSummary{Stream: id, Category: id.Category(), CreatedAt: created.UTC()})
		}
		if scanned >= c.o.ScanCap {
			more = true
			page.Next = id
			return false
		}
		return true
	}
	err := c.scan(ctx, q, take)
	if err != nil {
		return log.StreamPage{}, err
	}
	if more && page.Next == "" && len(page.Streams) > 0 {
		page.Next = page.Streams[len(page.Streams)-1].Stream
	}
	if err := c.heads(ctx, page.Streams); err != nil {
		return log.StreamPage{}, err
	}
	return page, nil
}

// scan calls take for the catalog rows q selects, after q.After, in
// (category, stream) order, until take returns false.
func (c *Catalog) scan(ctx context.Context, q log.StreamQuery, take func(string, time.Time) bool) error {
	afterCat := ""
	if q.After != "" {
		afterCat = q.After.Category()
	}
	switch {
	case q.Category != "" || strings.Contains(q.Prefix, "-"):
		cat := q.Category
		if cat == "" {
			cat = log.StreamID(q.Prefix).Category()
		}
		if q.Prefix != "" && log.StreamID(q.Prefix).Category() != cat && !strings.HasPrefix(cat, q.Prefix) {
			return nil // the prefix names another category
		}
		if q.After != "" && afterCat > cat {
			return nil
		}
		after := ""
		if afterCat == cat {
			after = string(q.After)
		}
		_, err := c.scanCategory(ctx, cat, after, q.Prefix, take)
		return err
	}
	// Every category starting with the prefix, from the one of After.
	from, inclusive := q.Prefix, true
	if afterCat != "" && afterCat >= from {
		from = afterCat
	}
	for {
		stmt := cqlCategoriesAfter
		if inclusive {
			stmt = cqlCategoriesFrom
		}
		iter := c.session.Query(stmt, from, 100).WithContext(ctx).Idempotent(true).Iter()
		var (
			cats []string
			cat  string
		)
		for iter.Scan(&cat) {
			cats = append(cats, cat)
		}
		if err := iter.Close(); err != nil {
			return cql.ReadErr("list categories", err)
		}
		for _, cat := range cats {
			if !strings.HasPrefix(cat, q.Prefix) {
				return nil
			}
			after := ""
			if cat == afterCat {
				after = string(q.After)
			}
			goOn, err := c.scanCategory(ctx, cat, after, "", take)
			if err != nil || !goOn {
				return err
			}
		}
		if len(cats) < 100 {
			return nil
		}
		from, inclusive = cats[len(cats)-1], false
	}
}

// scanCategory calls take for the streams of cat after `after` (or from
// `from`), in order; false when take stopped the scan.
func (c *Catalog) scanCategory(ctx context.Context, cat, after, from string, take func(string, time.Time) bool) (bool, error) {
	const batch = 500
	stmt, bound := cqlStreamsFrom, from
	if after != "" && after >= from {
		stmt, bound = cqlStreamsAfter, after
	}
	for {
		iter := c.session.Query(stmt, cat, bound, batch).WithContext(ctx).Idempotent(true).Iter()
		var (
			stream  string
			created time.Time
			n       int
			done    bool // past the prefix: nothing more in this category
			stopped bool // take stopped the scan
		)
		for !done && !stopped && iter.Scan(&stream, &created) {
			n++
			bound = stream
			if from != "" && !strings.HasPrefix(stream, from) {
				done = true
			} else if !take(stream, created) {
				stopped = true
			}
		}
		if err := iter.Close(); err != nil {
			return false, cql.ReadErr("list streams", err)
		}
		switch {
		case stopped:
			return false, nil
		case done || n < batch:
			return true, nil
		}
		stmt = cqlStreamsAfter
	}
}

// heads fills in the version and last update of each summary.
func (c *Catalog) heads(ctx context.Context, ss []log.StreamSummary) error {
	jobs := make([]func(context.Context) error, len(ss))
	for i := range ss {
		jobs[i] = func(ctx context.Context) error {
			h, err := c.o.Streams.Head(ctx, ss[i].Stream)
			if err != nil {
				return err
			}
			ss[i].Version, ss[i].UpdatedAt = h.Version, h.LastTime.UTC()
			if h.LastTime.IsZero() {
				ss[i].UpdatedAt = ss[i].CreatedAt
			}
			return nil
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	return run(ctx, jobs, headConcurrency)
}

// Categories implements log.Catalog.Categories: the category rows after
// q.After, those q.Visible passes counted in the catalog (up to
// CountCap each). A page scans at most ScanCap category rows, so a key
// that may read few of many categories gets pages that end early, each
// Next on the last row scanned; a page reads at most q.Limit counts.
func (c *Catalog) Categories(ctx context.Context, q log.CategoryQuery) (log.CategoryPage, error) {
	if q.Limit <= 0 {
		return log.CategoryPage{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "limit must be positive"}
	}
	var (
		page    log.CategoryPage
		from    = q.After
		scanned int
		more    bool
		cat     string
	)
	const batch = 1000
	for first := true; !more; first = false {
		stmt := cqlCategoriesAfter
		if first && q.After == "" {
			stmt = cqlCategoriesFrom
		}
		iter := c.session.Query(stmt, from, batch).WithContext(ctx).Idempotent(true).Iter()
		n := 0
		for !more && iter.Scan(&cat) {
			n++
			from = cat
			if q.Visible == nil || q.Visible(cat) {
				if len(page.Categories) == q.Limit {
					more = true
					break
				}
				page.Categories = append(page.Categories, log.CategoryCount{Category: cat})
			}
			if scanned++; scanned >= c.o.ScanCap {
				more = true
				page.Next = cat
			}
		}
		if err := iter.Close(); err != nil {
			return log.CategoryPage{}, cql.ReadErr("list categories", err)
		}
		if n < batch {
			break
		}
	}
	if more && page.Next == "" {
		page.Next = page.Categories[len(page.Categories)-1].Category
	}
	jobs := make([]func(context.Context) error, len(page.Categories))
	for i := range page.Categories {
		cc := &page.Categories[i]
		jobs[i] = func(ctx context.Context) error {
			n, exact, err := c.count(ctx, cc.Category)
			cc.Streams, cc.Exact = n, exact
			return err
		}
	}
	if len(jobs) == 0 {
		return page, nil
	}
	return page, run(ctx, jobs, 8)
}

// count counts the catalog rows of cat, up to CountCap: exact when the
// category has at most CountCap streams, which takes reading one row past
// the cap to know (a count that stopped at the cap called a category of
// exactly CountCap streams a lower bound).
func (c *Catalog) count(ctx context.Context, cat string) (int64, bool, error) {
	iter := c.session.Query(cqlCountStreams, cat).WithContext(ctx).Idempotent(true).PageSize(5000).Iter()
	var (
		n      int64
		stream string
	)
	for iter.Scan(&stream) {
		if n++; n > c.o.CountCap {
			break
		}
	}
	if err := iter.Close(); err != nil {
		return 0, false, cql.ReadErr("count streams", err)
	}
	if n > c.o.CountCap {
		return c.o.CountCap, false, nil
	}
	return n, true, nil
}
