package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// runEnv is what every scenario gets: its configuration, where progress
// goes, when the run started (the plots' time origin) and the processes
// whose cost it reports.
type runEnv struct {
	cfg     *Config
	out     io.Writer // tables
	stderr  io.Writer // progress
	started time.Time
	procs   procs
}

func (e *runEnv) stdout() io.Writer {
	if e.out == nil {
		return io.Discard
	}
	return e.out
}

// measure runs one load phase with progress lines and process accounting.
// Baseline phases pass withServer false: the server is idle then, and its
// CPU would mean nothing.
func (e *runEnv) measure(ctx context.Context, name, kind string, round int, lc loopConfig, newOp func(int) opFunc, withServer bool) Phase {
	return e.measureFrom(ctx, time.Now().Add(lc.warmup), name, kind, round, lc, newOp, withServer)
}

// measureFrom is measure with measuring starting at measureAt (the loop
// starts lc.warmup before it).
func (e *runEnv) measureFrom(ctx context.Context, measureAt time.Time, name, kind string, round int, lc loopConfig, newOp func(int) opFunc, withServer bool) Phase {
	label := name
	if round > 0 {
		label = fmt.Sprintf("%s #%d", name, round)
	}
	p := e.procs
	if !withServer {
		p.server, p.more = 0, nil
	}
	rec := newRecorder(measureAt)
	stop := startProgress(e.stderr, label, rec, lc.warmup+lc.duration)
	var (
		mu    sync.Mutex
		meter *procMeter
	)
	end := runLoop(ctx, lc, newOp, rec, func() {
		mu.Lock()
		defer mu.Unlock()
		meter = startMeter(p)
	})
	stop()
	ph := rec.phase(name, kind, end)
	mu.Lock()
	if meter != nil {
		ph.Process = meter.stop(ph.Events)
	}
	mu.Unlock()
	ph.Round = round
	ph.OffsetS = rec.start.Sub(e.started).Seconds()
	return ph
}

func (e *runEnv) loop(warmup, duration time.Duration) loopConfig {
	return loopConfig{concurrency: e.cfg.Concurrency, rate: e.cfg.Rate, warmup: warmup, duration: duration}
}

// payloadSeed fixes the payload pool, so the server and the baseline send
// the very same events.
const payloadSeed = 42

func runIngest(ctx context.Context, e *runEnv) (*Result, error) {
	c := e.cfg
	l := newIngestLoad(c, runPrefix("ingest", e.started), newPayloads(c.EventSize, payloadPoolSize, payloadSeed), e.started.UnixNano())
	if err := l.start(ctx); err != nil {
		return nil, err
	}
	ph := e.measure(ctx, "ingest", "server", 0, e.loop(c.Warmup, c.Duration), l.newOp, true)
	return &Result{Phases: []Phase{ph}}, nil
}

func runBaseline(ctx context.Context, e *runEnv) (*Result, error) {
	c := e.cfg
	b, err := openBaseline(ctx, c, runPrefix("baseline", e.started), newPayloads(c.EventSize, payloadPoolSize, payloadSeed), e.started.UnixNano())
	if err != nil {
		return nil, err
	}
	defer b.Close()
	ph := e.measure(ctx, "baseline-"+c.Variant, "baseline", 0, e.loop(c.Warmup, c.Duration), b.newOp, false)
	return &Result{Phases: []Phase{ph}}, nil
}

// roundWarmup precedes every compare round after the first of its side:
// it lets the previous side's requests drain and this side's connections
// fill before measuring.
const roundWarmup = time.Second

// runCompare alternates server ingest (A) and baseline (B) rounds of equal
// length after a warm-up of each, and reports server/baseline per round
// and their median. Alternating cancels slow drifts of the shared machine
// (compaction, other tenants) that separate runs would fold into the
// ratio.
func runCompare(ctx context.Context, e *runEnv) (*Result, error) {
	c := e.cfg
	payloads := newPayloads(c.EventSize, payloadPoolSize, payloadSeed)
	in := newIngestLoad(c, runPrefix("cmp-a", e.started), payloads, e.started.UnixNano())
	if err := in.start(ctx); err != nil {
		return nil, err
	}
	base, err := openBaseline(ctx, c, runPrefix("cmp-b", e.started), payloads, e.started.UnixNano()+1)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	res := &Result{}
	var ratios []float64
	bName := "baseline-" + c.Variant
	for r := 1; r <= c.Rounds && ctx.Err() == nil; r++ {
		w := roundWarmup
		if r == 1 {
			w = c.Warmup
		}
		a := e.measure(ctx, "ingest", "server", r, e.loop(w, c.Round), in.newOp, true)
		b := e.measure(ctx, bName, "baseline", r, e.loop(w, c.Round), base.newOp, false)
		res.Phases = append(res.Phases, a, b)
		if b.EventsPerS > 0 {
			ratios = append(ratios, a.EventsPerS/b.EventsPerS)
			fmt.Fprintf(e.stderr, "round %d: server/%s = %.3f\n", r, bName, ratios[len(ratios)-1])
		}
	}
	if len(ratios) > 0 {
		res.Ratios = append(res.Ratios, Ratio{Name: "server/" + bName + " events/s", Value: median(ratios), Rounds: ratios, Target: compareTarget(c)})
	}
	return res, nil
}

// compareTarget is issue 8's target for the ratio being measured.
func compareTarget(c *Config) string {
	switch {
	case c.Variant == "lwt-only":
		return ">= 5 (64 appenders on one stream, against one conditional write per append)"
	case c.EventsPerAppend >= 100:
		return ">= 0.7 (100-event appends)"
	}
	return ">= 0.4 (1-event appends; 0.35 with --expected exact)"
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
