package feeds

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/eventlog/eventlog/internal/record"
)

// bufPool recycles the buffers a continuous read (Reader.Pages)
// decompresses log records into. Allocated anew, they were a third of a
// catch-up read's allocations, and most of its memory clearing. A
// buffer goes back only when no page the caller may still hold has an
// event in it (Pages.Next).
type bufPool struct {
	// classes[k] holds buffers of capacity 2^k: one fits every record
	// whose plain encoding is longer than 2^(k-1) and at most 2^k.
	classes [maxClass + 1]sync.Pool
	// mems recycles the appends, events and selections of rows
	// (rowMem), from when the merge passes a row.
	mems   sync.Pool
	hits   atomic.Int64 // buffers reused (for tests)
	poison bool         // tests: put overwrites a buffer, so a read of it shows
}

// minClass is the smallest buffer pooled (records under 512 bytes are
// not compressed at all); maxClass the largest, 8 MiB: a commit group is
// at most 4 MiB of events, and a record declaring more (corrupt) is
// allocated at its size, not rounded up to twice it.
const (
	minClass = 9
	maxClass = 23
)

// get returns an empty buffer with room for n bytes, or nil (the decoder
// allocates) when n is 0 or beyond the classes.
func (p *bufPool) get(n int) []byte {
	if n <= 0 {
		return nil
	}
	k := max(bits.Len(uint(n-1)), minClass)
	if k > maxClass {
		return nil
	}
	if b, ok := p.classes[k].Get().(*[]byte); ok {
		p.hits.Add(1)
		return (*b)[:0]
	}
	return make([]byte, 0, 1<<k)
}

// put returns b, which nothing reads any more, to its class; buffers of
// other sizes (the decoder's own) are left to the collector.
func (p *bufPool) put(b []byte) {
	c := cap(b)
	k := bits.Len(uint(c)) - 1
	if c == 0 || c != 1<<k || k < minClass || k > maxClass {
		return
	}
	if p.poison {
		b = b[:c]
		for i := range b {
			b[i] = 0xAA
		}
	}
	p.classes[k].Put(&b)
}

// rowMem is the memory a row's decoded record and selection live in,
// apart from the events' bytes (row.buf): the merge copies what a page
// needs of an event, so it is free again once the row is passed.
type rowMem struct {
	rec record.Buffers
	sel []ref
}

// maxKeptSel bounds the selection a rowMem keeps, and a selection much
// larger than its row's goes too (record.Buffers.Clear keeps the rest
// near what the row used).
const maxKeptSel = 4096

func (p *bufPool) getMem() *rowMem {
	if m, ok := p.mems.Get().(*rowMem); ok {
		return m
	}
	return new(rowMem)
}

// putMem returns m, whose row nothing reads any more.
func (p *bufPool) putMem(m *rowMem) {
	m.rec.Clear()
	if c := cap(m.sel); c > maxKeptSel || c > 2*len(m.sel)+64 {
		m.sel = nil
	}
	p.mems.Put(m)
}
