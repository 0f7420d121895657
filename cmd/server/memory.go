package main

import (
	"runtime/debug"
)

// gcPercent is the garbage collector's target when GOGC is not set. At
// Go's default (100) the collector's marking took ~20 % of the server's
// CPU on 1-event appends, at 400 ~4 % (docs/benchmarks.md, "Garbage
// collector"); the heap it lets grow is bounded by --memory-limit.
const gcPercent = 400

// tuneGC applies the collector settings of a serving process: GOGC and
// GOMEMLIMIT, when set, win (the runtime read them at start), otherwise
// gcPercent and limit (bytes; 0: none). The limit is soft: past it the
// collector runs more often, never more than about half the CPU, and
// nothing fails.
func tuneGC(getenv func(string) string, limit int64) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" && limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}
