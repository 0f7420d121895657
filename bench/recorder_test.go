package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentilesUniform(t *testing.T) {
	start := time.Unix(1000, 0)
	r := newRecorder(start)
	// 1..10000 µs once each: the q-quantile is 10000·q.
	for us := 1; us <= 10_000; us++ {
		r.record(start.Add(time.Second/2), time.Duration(us)*time.Microsecond, outcome{events: 1})
	}
	p := r.phase("x", "server", start.Add(time.Second))
	want := map[string][2]int64{
		"p50":   {p.Latency.P50US, 5000},
		"p90":   {p.Latency.P90US, 9000},
		"p99":   {p.Latency.P99US, 9900},
		"p99.9": {p.Latency.P999US, 9990},
		"max":   {p.Latency.MaxUS, 10000},
	}
	for name, gw := range want {
		// 3 significant digits: within 0.1%.
		if math.Abs(float64(gw[0]-gw[1])) > 0.001*float64(gw[1])+1 {
			t.Errorf("%s = %d µs, want %d", name, gw[0], gw[1])
		}
	}
	if got, want := p.Latency.Count, int64(10_000); got != want {
		t.Fatalf("count %d, want %d", got, want)
	}
	if math.Abs(p.Latency.MeanUS-5000.5) > 5 {
		t.Fatalf("mean %.1f, want 5000.5", p.Latency.MeanUS)
	}
}

func TestPercentilesExponential(t *testing.T) {
	// Exponential with mean m: the q-quantile is -m·ln(1-q).
	const m = 2000.0
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Unix(1000, 0)
	r := newRecorder(start)
	for range 500_000 {
		us := rng.ExpFloat64() * m
		r.record(start, time.Duration(us*float64(time.Microsecond)), outcome{events: 1})
	}
	l := r.phase("x", "server", start.Add(time.Second)).Latency
	for _, c := range []struct {
		q   float64
		got int64
		tol float64
	}{{0.5, l.P50US, 0.02}, {0.9, l.P90US, 0.02}, {0.99, l.P99US, 0.03}, {0.999, l.P999US, 0.08}} {
		want := -m * math.Log(1-c.q)
		if math.Abs(float64(c.got)-want) > c.tol*want {
			t.Errorf("q%.3f = %d µs, want %.0f", c.q, c.got, want)
		}
	}
}

func TestRecorderCounts(t *testing.T) {
	start := time.Unix(1000, 0)
	r := newRecorder(start)
	r.record(start.Add(100*time.Millisecond), time.Millisecond, outcome{events: 10, bytes: 2000, retried: []string{"outcome_unknown"}})
	r.record(start.Add(2500*time.Millisecond), time.Millisecond, outcome{events: 10, bytes: 2000})
	r.record(start.Add(2600*time.Millisecond), 3*time.Millisecond, outcome{code: "timeout", detail: "first"})
	r.record(start.Add(2700*time.Millisecond), 3*time.Millisecond, outcome{code: "timeout", detail: "second"})
	r.count(start.Add(1500*time.Millisecond), 5, 100)
	p := r.phase("x", "server", start.Add(4*time.Second))

	if p.Events != 25 || p.Ops != 2 || p.Bytes != 4100 {
		t.Fatalf("events %d ops %d bytes %d, want 25, 2, 4100 (errors count no events)", p.Events, p.Ops, p.Bytes)
	}
	if p.DurationS != 4 || p.EventsPerS != 25.0/4 {
		t.Fatalf("duration %v, rate %v", p.DurationS, p.EventsPerS)
	}
	if p.Errors["timeout"] != 2 || p.ErrorText["timeout"] != "first" || p.Retries["outcome_unknown"] != 1 {
		t.Fatalf("errors %v %v retries %v", p.Errors, p.ErrorText, p.Retries)
	}
	if p.Latency.Count != 4 {
		t.Fatalf("%d latencies, want 4 (failures too)", p.Latency.Count)
	}
	if len(p.Timeline) != 3 {
		t.Fatalf("timeline of %d seconds, want 3", len(p.Timeline))
	}
	if got := []int64{p.Timeline[0].Events, p.Timeline[1].Events, p.Timeline[2].Events}; got[0] != 10 || got[1] != 5 || got[2] != 10 {
		t.Fatalf("events per second %v, want [10 5 10]", got)
	}
}

func TestPhaseLastsUntilLastCompletion(t *testing.T) {
	start := time.Unix(1000, 0)
	r := newRecorder(start)
	r.record(start.Add(5*time.Second), time.Millisecond, outcome{events: 1})
	if got := r.phase("x", "server", start.Add(4*time.Second)).DurationS; got != 5 {
		t.Fatalf("duration %v, want 5 (an operation completed after the nominal end)", got)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
