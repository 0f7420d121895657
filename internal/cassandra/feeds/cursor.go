package feeds

import (
	"strconv"
	"strings"
)

// ShardPos is a place in one shard's log: the next event to read is event
// Index of row Seq (events of a row: its record's appends' events, in
// order). The zero value is the start of the log. Row 1, event 0 is the
// start too; Cursor keeps the zero form.
type ShardPos struct {
	Seq   int64
	Index int
}

// row is the seq of the next row to read.
func (p ShardPos) row() int64 { return max(p.Seq, 1) }

// canon folds the two spellings of the start into the zero value.
func (p ShardPos) canon() ShardPos {
	if p.Seq <= 1 && p.Index == 0 {
		return ShardPos{}
	}
	if p.Seq == 0 {
		p.Seq = 1
	}
	return p
}

// after returns the position following event index of row seq, in a row
// of n events.
func after(seq int64, index, n int) ShardPos {
	if index+1 >= n {
		return ShardPos{Seq: seq + 1}
	}
	return ShardPos{Seq: seq, Index: index + 1}
}

// Cursor is a position in the feeds: one ShardPos per shard of the
// keyspace. The zero Cursor is the start of every log. A Cursor is a
// value: no method changes it, and Read never keeps or changes the one it
// is given.
type Cursor struct {
	pos []ShardPos // nil (the start) or one per shard, canonical
}

// NewCursor returns the cursor with positions ps, one per shard.
func NewCursor(ps []ShardPos) Cursor {
	c := Cursor{pos: make([]ShardPos, len(ps))}
	for i, p := range ps {
		c.pos[i] = p.canon()
	}
	if c.IsZero() {
		return Cursor{}
	}
	return c
}

// Len is the number of shards c has positions for: 0 for the zero Cursor.
func (c Cursor) Len() int { return len(c.pos) }

// Shard returns the position in shard s (the start when c has none).
func (c Cursor) Shard(s int) ShardPos {
	if s >= 0 && s < len(c.pos) {
		return c.pos[s]
	}
	return ShardPos{}
}

// Positions returns a copy of c's positions: nil for the zero Cursor.
func (c Cursor) Positions() []ShardPos {
	if c.pos == nil {
		return nil
	}
	return append([]ShardPos(nil), c.pos...)
}

// IsZero reports whether c is the start of every shard's log.
func (c Cursor) IsZero() bool {
	for _, p := range c.pos {
		if p != (ShardPos{}) {
			return false
		}
	}
	return true
}

// Equal reports whether c and d are the same position.
func (c Cursor) Equal(d Cursor) bool {
	n := max(len(c.pos), len(d.pos))
	for s := 0; s < n; s++ {
		if c.Shard(s) != d.Shard(s) {
			return false
		}
	}
	return true
}

// String lists the positions as seq.index, for logs and test failures.
func (c Cursor) String() string {
	if c.IsZero() {
		return "start"
	}
	var b strings.Builder
	for s, p := range c.pos {
		if s > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(p.Seq, 10))
		b.WriteByte('.')
		b.WriteString(strconv.Itoa(p.Index))
	}
	return b.String()
}
