package httpapi

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterValue reads c.
func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestFloodGate: LogFloodLines lines a window pass, the rest are counted,
// and the first line of a later window carries how many it follows.
func TestFloodGate(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"kind"})
	g := newFloodGate(vec, "k")
	t0 := time.Unix(1000, 0)
	passed := 0
	for i := range 3 * LogFloodLines {
		if ok, skipped := g.pass(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			passed++
			if skipped != 0 {
				t.Fatalf("line %d: %d suppressed before it, in the first window", i, skipped)
			}
		}
	}
	if passed != LogFloodLines {
		t.Fatalf("%d lines passed in a window, want %d", passed, LogFloodLines)
	}
	if got := counterValue(t, vec.WithLabelValues("k")); got != 2*LogFloodLines {
		t.Fatalf("suppressed counter %v, want %d", got, 2*LogFloodLines)
	}
	ok, skipped := g.pass(t0.Add(LogFloodWindow))
	if !ok || skipped != 2*LogFloodLines {
		t.Fatalf("next window: %v, %d suppressed, want true, %d", ok, skipped, 2*LogFloodLines)
	}
	if ok, skipped := g.pass(t0.Add(LogFloodWindow + time.Millisecond)); !ok || skipped != 0 {
		t.Fatalf("second line of the next window: %v, %d", ok, skipped)
	}
}
