package partition

import (
	"reflect"
	"testing"
	"time"
)

func TestMustSeal(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{Width: time.Hour, MaxEvents: 10}
	open := Head{Bucket: 3, FirstVersion: 21, LastVersion: 25, Created: true, OpenedAt: t0}
	for _, c := range []struct {
		name string
		h    Head
		n    int
		now  time.Time
		want bool
	}{
		{"Fits", open, 5, t0.Add(59 * time.Minute), false},
		{"OverCap", open, 6, t0, true},
		{"WindowEnded", open, 1, t0.Add(time.Hour), true},
		{"ClockBehindOpening", open, 1, t0.Add(-3 * time.Hour), false},
		{"Sealed", Head{Created: true, Sealed: true, FirstVersion: 1, LastVersion: 1, OpenedAt: t0}, 1, t0, true},
		{"UncreatedNeverSeals", Head{Bucket: 4, FirstVersion: 26, LastVersion: 25}, 50, t0.Add(99 * time.Hour), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := p.MustSeal(c.h, c.n, c.now); got != c.want {
				t.Fatalf("MustSeal = %v, want %v", got, c.want)
			}
		})
	}
}

func TestNextAndRows(t *testing.T) {
	h := Head{Bucket: 2, FirstVersion: 11, LastVersion: 17, Created: true, LastTime: time.Unix(5, 0)}
	if h.Rows() != 7 {
		t.Fatalf("rows %d", h.Rows())
	}
	n := h.Next()
	if n.Bucket != 3 || n.FirstVersion != 18 || n.LastVersion != 17 || n.Created || n.Rows() != 0 || !n.LastTime.Equal(h.LastTime) {
		t.Fatalf("next %+v", n)
	}
}

func TestEventTimeNeverGoesBack(t *testing.T) {
	last := time.Unix(100, 0)
	h := Head{LastTime: last}
	if got := EventTime(h, time.Unix(50, 0)); !got.Equal(last) {
		t.Fatalf("behind clock: %v", got)
	}
	if got := EventTime(h, time.Unix(150, 0)); !got.Equal(time.Unix(150, 0)) {
		t.Fatalf("ahead clock: %v", got)
	}
}

func TestLocate(t *testing.T) {
	bs := []Bucket{{0, 1}, {1, 11}, {2, 21}, {3, 31}} // last bucket open-ended
	for _, c := range []struct {
		name     string
		from, to int64
		want     []Span
	}{
		{"All", 1, 0, []Span{{0, 1, 10}, {1, 11, 20}, {2, 21, 30}, {3, 31, 0}}},
		{"InsideOne", 12, 15, []Span{{1, 12, 15}}},
		{"AcrossBoundary", 9, 12, []Span{{0, 9, 10}, {1, 11, 12}}},
		{"ExactBucket", 11, 20, []Span{{1, 11, 20}}},
		{"FromInLast", 35, 0, []Span{{3, 35, 0}}},
		{"BeyondHead", 500, 600, []Span{{3, 500, 600}}},
		{"ZeroFrom", 0, 3, []Span{{0, 1, 3}}},
		{"Inverted", 5, 4, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Locate(bs, c.from, c.to); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Locate(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
			}
		})
	}
	t.Run("EmptyIndexedBucket", func(t *testing.T) {
		// Bucket 2 is indexed but holds nothing yet: it starts at 21 and
		// the stream ends at 20.
		got := Locate([]Bucket{{0, 1}, {1, 11}, {2, 21}}, 15, 0)
		want := []Span{{1, 15, 20}, {2, 21, 0}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	if got := Locate(nil, 1, 0); got != nil {
		t.Fatalf("no buckets: %v", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	if (Policy{Width: time.Hour, MaxEvents: 1}).Validate() != nil {
		t.Fatal("valid policy rejected")
	}
	if (Policy{Width: 0, MaxEvents: 1}).Validate() == nil || (Policy{Width: time.Hour}).Validate() == nil {
		t.Fatal("invalid policy accepted")
	}
}
