package main

import (
	"math"
	"testing"
)

// pickCounts draws n streams from c's distribution.
func pickCounts(t *testing.T, c Config, n int) []int {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := newPicker(&c, newRNG(1, 0))
	counts := make([]int, c.Streams)
	for range n {
		s := p.pick()
		if s < 0 || s >= c.Streams {
			t.Fatalf("picked %d of %d streams", s, c.Streams)
		}
		counts[s]++
	}
	return counts
}

func TestUniform(t *testing.T) {
	c := defaultConfig("ingest")
	c.Streams = 100
	counts := pickCounts(t, c, 100_000)
	for i, n := range counts {
		// Expected 1000 each; 5 sigma is about 160.
		if math.Abs(float64(n-1000)) > 160 {
			t.Fatalf("stream %d picked %d times, want about 1000", i, n)
		}
	}
}

func TestZipf(t *testing.T) {
	c := defaultConfig("ingest")
	c.Streams, c.Dist, c.ZipfS = 10_000, "zipf", 1.1
	const n = 200_000
	counts := pickCounts(t, c, n)
	for i := 1; i < 10; i++ {
		if counts[i] > counts[0] {
			t.Fatalf("stream %d (%d picks) beats stream 0 (%d): rank 0 must be the most popular", i, counts[i], counts[0])
		}
	}
	// P(k) ∝ (1+k)^-s: the first stream's share is 1/H where H is the
	// generalised harmonic number over all streams.
	h := 0.0
	for k := range c.Streams {
		h += math.Pow(float64(1+k), -c.ZipfS)
	}
	want := 1 / h
	if got := float64(counts[0]) / n; math.Abs(got-want) > 0.1*want {
		t.Fatalf("stream 0 share %.4f, want %.4f", got, want)
	}
	top := 0
	for _, v := range counts[:100] {
		top += v
	}
	if share := float64(top) / n; share < 0.4 {
		t.Fatalf("top 1%% of streams take %.2f of appends; zipf(1.1) should concentrate more", share)
	}
}

func TestHot(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hot        int
		share      float64
		wantShare  float64
		perHotSlop float64
	}{
		{"OneHot90", 1, 0.9, 0.9, 0.01},
		{"FourHot50", 4, 0.5, 0.5, 0.01},
		{"AllToHot", 2, 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultConfig("ingest")
			c.Streams, c.Dist, c.HotStreams, c.HotShare = 1000, "hot", tc.hot, tc.share
			const n = 100_000
			counts := pickCounts(t, c, n)
			hot := 0
			for _, v := range counts[:tc.hot] {
				hot += v
			}
			if got := float64(hot) / n; math.Abs(got-tc.wantShare) > tc.perHotSlop {
				t.Fatalf("hot share %.4f, want %.2f", got, tc.wantShare)
			}
		})
	}
	t.Run("OnlyHotStreams", func(t *testing.T) {
		c := defaultConfig("ingest")
		c.Streams, c.Dist, c.HotStreams, c.HotShare = 3, "hot", 3, 0.5
		counts := pickCounts(t, c, 3000)
		for i, v := range counts {
			if v == 0 {
				t.Fatalf("stream %d never picked", i)
			}
		}
	})
}

func TestStreamNames(t *testing.T) {
	c := defaultConfig("replay")
	p := runPrefix("ingest", fixedTime)
	for _, s := range []string{p, streamName(p, 0), streamName(p, 9_999_999)} {
		c.Stream = s
		if err := c.Validate(); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	}
}
