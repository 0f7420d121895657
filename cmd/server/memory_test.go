package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	pct, lim := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(pct); debug.SetMemoryLimit(lim) })

	tuneGC(func(string) string { return "" }, 123<<20)
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent without GOGC = %d, want %d", got, gcPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != 123<<20 {
		t.Errorf("memory limit without GOMEMLIMIT = %d, want %d", got, 123<<20)
	}

	// The environment wins: the runtime applied it at start.
	env := map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}
	tuneGC(func(k string) string { return env[k] }, 123<<20)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent with GOGC set changed to %d", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("memory limit with GOMEMLIMIT set changed to %d", got)
	}
}
