package streams

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/internal/record"
)

// TestReadSpanRacingModel drives readSpan and rowReader, the real ones,
// over a model of one stream partition (modelRows) whose rows change
// after any one of the read's queries or page fetches: a block
// compaction with Compact's rules (modelRows.compact), and before it a
// compaction of a prefix of the blocks or a catch-up's run written across
// blocks. Pages are fetched ahead as the driver does (Prefetch: at a
// random point of the second half of a page). Every read, forward and
// backward, bounded or not, limited or not, must send each chunk of its
// range once, in order. A helper's review of the read fixes (Session 23)
// built its first version, which found 11,433 failing interleavings on
// the code before them (this one fails on the forward read's old stop
// condition). rowWith's retry, reached in about one interleaving of
// 35,000, has a test of its own (TestRowWithRetries).
func TestReadSpanRacingModel(t *testing.T) {
	runs, fails := 0, 0
	seeds := uint64(300)
	if testing.Short() {
		seeds = 60
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		nChunks := 40 + rng.IntN(120)
		_, chunks := buildModel(rand.New(rand.NewPCG(seed, 1)), nChunks)
		head := chunks[len(chunks)-1].last
		for range 8 {
			c := modelCase{seed: seed, block: []int64{8, 16, 32}[rng.IntN(3)], pageSize: 1 + rng.IntN(12), prefetch: rng.IntN(2) == 0,
				backward: rng.IntN(2) == 0, want: []int64{0, 0, 1, 3, 10}[rng.IntN(5)], preCompact: rng.IntN(2) == 0}
			c.from = 1 + rng.Int64N(head)
			if rng.IntN(3) > 0 {
				c.to = c.from + rng.Int64N(head-c.from+1)
			}
			_, _, queries, err := runModel(c, nChunks)
			if err != nil {
				t.Fatalf("%+v, nothing changing: %v", c, err)
			}
			c.second = rng.IntN(3)
			for at := 1; at <= queries+1; at++ {
				c.at = at
				if c.second != 0 {
					c.at2 = 1 + rng.IntN(queries+1)
				}
				runs++
				got, want, _, err := runModel(c, nChunks)
				if err == nil && slices.EqualFunc(got, want, func(g Chunk, w modelPart) bool {
					return g.FirstVersion == w.first && g.LastVersion == w.last
				}) {
					continue
				}
				if fails++; fails <= 5 {
					t.Errorf("%+v: %v\n got  %v\n want %v", c, err, chunkRanges(got), partRanges(want))
				}
			}
		}
	}
	if fails > 0 {
		t.Fatalf("%d of %d interleavings failed", fails, runs)
	}
	t.Logf("%d interleavings", runs)
}

type modelPart struct {
	first, last int64
	t           time.Time
	body        []byte // a chunk body
}

type modelRow struct {
	heldRow
	parts []modelPart
}

// modelRows is one partition's rows by key, and a hook run after each
// query or page fetch (numbered from 1).
type modelRows struct {
	byKey   map[int64]modelRow
	queries int
	hook    func(n int)
	rng     *rand.Rand
}

func (d *modelRows) after() {
	d.queries++
	if d.hook != nil {
		d.hook(d.queries)
	}
}

func (d *modelRows) keys(backward bool) []int64 {
	ks := make([]int64, 0, len(d.byKey))
	for k := range d.byKey {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	if backward {
		slices.Reverse(ks)
	}
	return ks
}

// page returns up to n rows with keys in lo..hi past cursor (nil: from
// the start), in the iteration's order.
func (d *modelRows) page(backward bool, lo, hi int64, cursor *int64, n int) []modelRow {
	var out []modelRow
	for _, k := range d.keys(backward) {
		if k < lo || k > hi || cursor != nil && (!backward && k <= *cursor || backward && k >= *cursor) {
			continue
		}
		out = append(out, d.byKey[k])
		if len(out) == n {
			break
		}
	}
	d.after()
	return out
}

// modelIter pages through rows as the driver does, the next page fetched
// ahead at a random point of the second half of the current one.
type modelIter struct {
	d                 *modelRows
	backward, noAhead bool
	lo, hi            int64
	n, pos, aheadAt   int
	cur, ahead        []modelRow
	fetched, more     bool
	cursor            int64
}

func (d *modelRows) rows(lo, hi int64, backward bool, pageSize int) rowIter {
	return d.iter(lo, hi, backward, pageSize, true)
}

func (d *modelRows) iter(lo, hi int64, backward bool, pageSize int, ahead bool) *modelIter {
	it := &modelIter{d: d, backward: backward, noAhead: !ahead || d.rng == nil, lo: lo, hi: hi, n: pageSize}
	it.cur = d.page(backward, lo, hi, nil, pageSize)
	it.setPage()
	return it
}

func (it *modelIter) setPage() {
	it.pos = 0
	it.more = len(it.cur) == it.n
	if len(it.cur) > 0 {
		it.cursor = it.cur[len(it.cur)-1].last
	}
	it.aheadAt = len(it.cur)
	if !it.noAhead && len(it.cur) > 0 {
		half := len(it.cur) / 2
		it.aheadAt = half + it.d.rng.IntN(len(it.cur)-half+1)
	}
}

func (it *modelIter) row() (modelRow, bool) {
	for {
		if it.pos >= it.aheadAt && it.more && !it.fetched {
			c := it.cursor
			it.ahead, it.fetched = it.d.page(it.backward, it.lo, it.hi, &c, it.n), true
		}
		if it.pos < len(it.cur) {
			it.pos++
			return it.cur[it.pos-1], true
		}
		if !it.fetched {
			return modelRow{}, false
		}
		it.cur, it.fetched = it.ahead, false
		it.setPage()
		if len(it.cur) == 0 {
			return modelRow{}, false
		}
	}
}

func (it *modelIter) next(r *heldRow) bool {
	row, ok := it.row()
	*r = row.heldRow
	return ok
}

func (it *modelIter) close() error { return nil }

func (d *modelRows) holding(v int64, pageSize int) (int64, error) {
	it := d.iter(v, math.MaxInt64, false, pageSize, false)
	for {
		r, ok := it.row()
		if !ok {
			return math.MaxInt64, nil
		}
		if r.first <= v {
			return r.last, nil
		}
	}
}

func (d *modelRows) at(k int64) (heldRow, bool, error) {
	r, ok := d.byKey[k]
	d.after()
	return r.heldRow, ok, nil
}

// put writes a row at its key; of two rows at one key, the one with more
// events wins (rowTimestamp).
func (d *modelRows) put(r modelRow) {
	if o, ok := d.byKey[r.last]; ok && o.first < r.first {
		return
	}
	d.byKey[r.last] = r
}

// rowOf is the row of consecutive chunks: a chunk row, or a run.
func rowOf(parts []modelPart) modelRow {
	l := &parts[len(parts)-1]
	if len(parts) == 1 {
		return modelRow{heldRow{l.first, l.last, l.t, l.body}, parts}
	}
	rp := make([]record.Part, len(parts))
	for i, p := range parts {
		rp[i] = record.Part{Seq: int64(i), Time: p.t.UnixMilli(), FirstVersion: p.first, LastVersion: p.last, Body: p.body}
	}
	return modelRow{heldRow{parts[0].first, l.last, l.t, record.AppendRun(nil, rp)}, parts}
}

// compact rewrites, with Compact's rules (the bucket starting at version
// 1, blocks of size versions), each complete block up to upTo held in
// more than one row: one run at the key of its last chunk, the rows wholly
// inside it but that key deleted, at once.
func (d *modelRows) compact(size, upTo int64) {
	type key struct{ first, last int64 }
	var keys []key
	for _, r := range d.byKey {
		if r.last <= upTo {
			keys = append(keys, key{r.first, r.last})
		}
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Compare(a.first, b.first) })
	covered := int64(0)
	for _, k := range keys {
		if k.first > covered+1 {
			break
		}
		covered = max(covered, k.last)
	}
	for j := int64(0); (j+1)*size <= covered; j++ {
		lo, hi := j*size+1, (j+1)*size
		inside := 0
		for _, k := range keys {
			if k.first >= lo && k.last <= hi {
				inside++
			}
		}
		if inside < 2 {
			continue
		}
		chunks := map[int64]modelPart{}
		end := int64(0)
		for _, k := range d.keys(false) {
			r := d.byKey[k]
			if k < lo {
				continue
			}
			if end != 0 && r.first > end {
				break
			}
			for _, p := range r.parts {
				chunks[p.first] = p
				if p.first <= hi && p.last >= hi {
					end = p.last
				}
			}
		}
		start := int64(math.MaxInt64)
		for v := range chunks {
			if v >= lo {
				start = min(start, v)
			}
		}
		var parts []modelPart
		for v := start; v <= end; v = parts[len(parts)-1].last + 1 {
			parts = append(parts, chunks[v])
		}
		for k, r := range d.byKey {
			if r.last >= start && r.last < end && r.first >= start {
				delete(d.byKey, k)
			}
		}
		rp := make([]record.Part, len(parts))
		for i, p := range parts {
			rp[i] = record.Part{Seq: int64(i), Time: p.t.UnixMilli(), FirstVersion: p.first, LastVersion: p.last, Body: p.body}
		}
		l := &parts[len(parts)-1]
		d.put(modelRow{heldRow{start, end, l.t, record.AppendBlock(nil, rp)}, parts})
	}
}

// buildModel writes nChunks chunks of 1-4 events as rows and runs of up
// to five, then a few overlapping runs of other writers (catch-ups).
func buildModel(rng *rand.Rand, nChunks int) (*modelRows, []modelPart) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var chunks []modelPart
	v := int64(1)
	for i := range nChunks {
		n := 1
		if rng.IntN(3) == 0 {
			n = 1 + rng.IntN(4)
		}
		evs := make([]record.Event, n)
		for j := range evs {
			evs[j] = record.Event{Type: "t", Data: fmt.Appendf(nil, `{"v":%d}`, v+int64(j))}
		}
		c := record.Chunk{FirstVersion: v, Appends: []record.ChunkAppend{{Events: evs}}}
		chunks = append(chunks, modelPart{v, c.LastVersion(), t0.Add(time.Duration(i) * time.Second), record.AppendChunkBody(nil, &c)})
		v = c.LastVersion() + 1
	}
	d := &modelRows{byKey: map[int64]modelRow{}, rng: rng}
	for i := 0; i < len(chunks); {
		j := i + 1
		if rng.IntN(4) == 0 {
			j = i + 1 + rng.IntN(5)
		}
		j = min(j, len(chunks))
		d.put(rowOf(chunks[i:j]))
		i = j
	}
	for range rng.IntN(6) {
		i := rng.IntN(len(chunks))
		d.put(rowOf(chunks[i:min(len(chunks), i+1+rng.IntN(12))]))
	}
	return d, chunks
}

type modelCase struct {
	seed            uint64
	from, to        int64 // to 0: unbounded
	backward        bool
	want            int64
	pageSize        int
	prefetch        bool
	block           int64
	preCompact      bool // some blocks compacted before the read
	at, at2, second int  // the compaction after query at; second (1: a catch-up's run, 2: a prefix compacted) after at2
}

func runModel(c modelCase, nChunks int) (got []Chunk, want []modelPart, queries int, err error) {
	rng := rand.New(rand.NewPCG(c.seed, 1))
	d, chunks := buildModel(rng, nChunks)
	if !c.prefetch {
		d.rng = nil
	}
	if c.preCompact {
		d.compact(c.block, chunks[rng.IntN(len(chunks))].last)
	}
	to := c.to
	if to == 0 {
		to = chunks[len(chunks)-1].last
	}
	for _, p := range chunks {
		if p.last >= c.from && p.first <= to {
			want = append(want, p)
		}
	}
	if c.backward {
		slices.Reverse(want)
	}
	crng := rand.New(rand.NewPCG(c.seed, 7))
	d.hook = func(n int) {
		if n == c.at2 {
			switch c.second {
			case 1:
				i := crng.IntN(len(chunks))
				d.put(rowOf(chunks[i:min(len(chunks), i+1+crng.IntN(40))]))
			case 2:
				d.compact(c.block, chunks[crng.IntN(len(chunks))].last)
			}
		}
		if n == c.at {
			d.compact(c.block, math.MaxInt64)
		}
	}
	rr := rowReader{sp: partition.Span{From: c.from, To: c.to}, bounded: c.to != 0, backward: c.backward, want: c.want,
		next: c.from, sent: math.MaxInt64, send: func(ch Chunk) bool { got = append(got, ch); return true }}
	err = readSpan(d, "model", c.pageSize, &rr)
	return got, want, d.queries, err
}

func chunkRanges(cs []Chunk) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%d-%d", c.FirstVersion, c.LastVersion))
	}
	return out
}

func partRanges(ps []modelPart) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%d-%d", p.first, p.last))
	}
	return out
}

// TestRowWithRetries: the row rowWith found for a version is deleted
// before it is read (its block rewritten between the two queries); the
// run that replaced it is read instead.
func TestRowWithRetries(t *testing.T) {
	d, chunks := buildModel(rand.New(rand.NewPCG(1, 2)), 1)
	clear(d.byKey)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	body := chunks[0].body
	for v := int64(1); v <= 40; v++ {
		d.put(rowOf([]modelPart{{v, v, t0.Add(time.Duration(v) * time.Second), body}}))
	}
	d.hook = func(n int) {
		if n == 1 { // after holding's first page, before at
			d.compact(16, math.MaxInt64)
		}
	}
	r, ok, err := rowWith(d, "model", 5)
	if err != nil || !ok || r.first != 1 || r.last != 16 {
		t.Fatalf("row %d-%d, ok %v, %v; want the run 1-16", r.first, r.last, ok, err)
	}
}
