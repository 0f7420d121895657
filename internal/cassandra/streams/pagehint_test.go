package streams

import (
	"context"
	"math"
	"testing"

	"github.com/eventlog/eventlog/internal/partition"
)

// pageSizes records the page size of each query of a spanRows.
type pageSizes struct {
	spanRows
	sizes []int
}

func (p *pageSizes) rows(lo, hi int64, backward bool, pageSize int) rowIter {
	p.sizes = append(p.sizes, pageSize)
	return p.spanRows.rows(lo, hi, backward, pageSize)
}

// TestLaterSpansTakeTheMeasuredPage: a read's first span starts with a
// page of a few rows, whose size is unknown, then one of the rows that fit
// readPageBytes; the spans after it start with the page the read measured.
// Each span starting at 4 rows cost a replay a query more a bucket, and
// the page its driver had fetched ahead (a tenth of a replay's rate).
func TestLaterSpansTakeTheMeasuredPage(t *testing.T) {
	const rows, most = 200, 5000
	var hint pageHint
	for i, want := range [][]int{{firstPageRows, most}, {most}} {
		d, _ := lendModel(i, rows, math.MaxInt64) // 1-event rows, none compacted
		src := &pageSizes{spanRows: d}
		_, cancel := context.WithCancel(context.Background())
		r := openSpanOn(src, cancel, "hint", most, partition.Span{From: 1}, false, false, false, 0, &hint)
		n := 0
		if err := r.each(func(c *Chunk) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		r.close()
		if n != rows {
			t.Fatalf("span %d: %d chunks, want %d", i, n, rows)
		}
		if len(src.sizes) != len(want) || src.sizes[0] != want[0] || src.sizes[len(src.sizes)-1] != want[len(want)-1] {
			t.Fatalf("span %d: queries of pages %v, want %v", i, src.sizes, want)
		}
	}
}
