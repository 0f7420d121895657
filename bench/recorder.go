package main

import (
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to 5 minutes with 3
// significant digits (0.1% resolution); per-second histograms use 2.
const (
	histMinUS = 1
	histMaxUS = int64(5 * time.Minute / time.Microsecond)
)

func newHist(digits int) *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinUS, histMaxUS, digits)
}

// outcome is what one measured operation did.
type outcome struct {
	events, bytes int
	// code is "" on success, else the problem code (or a client-side
	// cause: transport, timeout, cas_not_applied, ...).
	code string
	// detail describes the error; the first of each code is kept.
	detail string
	// retried lists the causes of resends before the final attempt
	// (wrong_expected_version in exact mode, outcome_unknown, ...).
	retried []string
}

// recorder accumulates one phase's measurements: totals, an HDR histogram
// of latencies, errors by code, and per-second buckets for the plots.
// Operations are recorded by their completion time.
type recorder struct {
	start time.Time

	mu      sync.Mutex
	hist    *hdrhistogram.Histogram
	secs    []*second
	ops     int64
	events  int64
	bytes   int64
	errors  map[string]int64
	samples map[string]string // code → first error text
	retries map[string]int64
	last    time.Time // latest completion

	// live counts every completion, warm-up included, for progress lines.
	live atomic.Int64
}

type second struct {
	ops, events, bytes int64
	hist               *hdrhistogram.Histogram
}

func newRecorder(start time.Time) *recorder {
	return &recorder{start: start, hist: newHist(3), errors: map[string]int64{}, samples: map[string]string{}, retries: map[string]int64{}}
}

// record adds one operation that completed at end after latency d.
// Failed operations count for errors and latency, not for events.
func (r *recorder) record(end time.Time, d time.Duration, o outcome) {
	us := max(d.Microseconds(), histMinUS)
	us = min(us, histMaxUS)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range o.retried {
		r.retries[c]++
	}
	s := r.second(end)
	r.hist.RecordValue(us)
	s.hist.RecordValue(us)
	if o.code != "" {
		r.fail(o.code, o.detail)
		return
	}
	r.ops++
	r.events += int64(o.events)
	r.bytes += int64(o.bytes)
	s.ops++
	s.events += int64(o.events)
	s.bytes += int64(o.bytes)
	if end.After(r.last) {
		r.last = end
	}
}

// count adds events read at t without a latency (streamed reads count
// their progress this way, then record one latency for the whole read).
func (r *recorder) count(t time.Time, events, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.second(t)
	s.events += int64(events)
	s.bytes += int64(bytes)
	r.events += int64(events)
	r.bytes += int64(bytes)
	if t.After(r.last) {
		r.last = t
	}
}

// fail counts an error; r.mu is held.
func (r *recorder) fail(code, detail string) {
	r.errors[code]++
	if _, ok := r.samples[code]; !ok {
		if len(detail) > 300 {
			detail = detail[:300] + "…"
		}
		r.samples[code] = detail
	}
}

// latency records a latency alone (the read's total, counted already);
// err, if set, makes it a failure with code.
func (r *recorder) latency(end time.Time, d time.Duration, code string, err error) {
	us := min(max(d.Microseconds(), histMinUS), histMaxUS)
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.second(end)
	r.hist.RecordValue(us)
	s.hist.RecordValue(us)
	if err == nil {
		r.ops++
		s.ops++
	} else {
		r.fail(code, err.Error())
	}
}

func (r *recorder) second(t time.Time) *second {
	i := max(int(t.Sub(r.start)/time.Second), 0)
	for len(r.secs) <= i {
		r.secs = append(r.secs, &second{hist: newHist(2)})
	}
	return r.secs[i]
}

// phase summarises the recorder as a result phase measured from its start
// to end (the later of end and the last completion).
func (r *recorder) phase(name, kind string, end time.Time) Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last.After(end) {
		end = r.last
	}
	dur := end.Sub(r.start).Seconds()
	p := Phase{
		Name:      name,
		Kind:      kind,
		DurationS: dur,
		Ops:       r.ops,
		Events:    r.events,
		Bytes:     r.bytes,
		Latency:   latencyOf(r.hist),
		Errors:    copyCounts(r.errors),
		ErrorText: copyMap(r.samples),
		Retries:   copyCounts(r.retries),
	}
	if dur > 0 {
		p.EventsPerS = float64(r.events) / dur
		p.MBPerS = float64(r.bytes) / dur / 1e6
	}
	for i, s := range r.secs {
		p.Timeline = append(p.Timeline, Second{
			T: i, Ops: s.ops, Events: s.events, Bytes: s.bytes,
			P50US: s.hist.ValueAtQuantile(50), P99US: s.hist.ValueAtQuantile(99), MaxUS: s.hist.Max(),
		})
	}
	return p
}

// latencyOf reads the summary percentiles of h.
func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count:  h.TotalCount(),
		MeanUS: h.Mean(),
		P50US:  h.ValueAtQuantile(50),
		P90US:  h.ValueAtQuantile(90),
		P99US:  h.ValueAtQuantile(99),
		P999US: h.ValueAtQuantile(99.9),
		MaxUS:  h.Max(),
	}
}

func copyCounts(m map[string]int64) map[string]int64 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
