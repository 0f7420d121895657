package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// picker chooses the stream of the next append. Each worker has its own
// (the generators are not safe for concurrent use).
type picker interface {
	pick() int
}

// newPicker returns the distribution c.Dist over c.Streams streams.
// Stream 0 is the most popular one for zipf, streams 0..hot-1 are the hot
// ones.
func newPicker(c *Config, rng *rand.Rand) picker {
	switch c.Dist {
	case "zipf":
		return &zipfPicker{z: rand.NewZipf(rng, c.ZipfS, 1, uint64(c.Streams-1))}
	case "hot":
		return &hotPicker{rng: rng, n: c.Streams, hot: c.HotStreams, share: c.HotShare}
	}
	return &uniformPicker{rng: rng, n: c.Streams}
}

type uniformPicker struct {
	rng *rand.Rand
	n   int
}

func (p *uniformPicker) pick() int { return p.rng.IntN(p.n) }

type zipfPicker struct{ z *rand.Zipf }

func (p *zipfPicker) pick() int { return int(p.z.Uint64()) }

// hotPicker sends share of the appends to the first hot streams
// (uniformly among them) and the rest uniformly to the others.
type hotPicker struct {
	rng    *rand.Rand
	n, hot int
	share  float64
}

func (p *hotPicker) pick() int {
	if p.hot == p.n || p.rng.Float64() < p.share {
		return p.rng.IntN(p.hot)
	}
	return p.hot + p.rng.IntN(p.n-p.hot)
}

// newRNG returns a worker's generator; seeds differ per worker and run.
func newRNG(run int64, worker int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(run), uint64(worker)*0x9e3779b97f4a7c15+1))
}

// runPrefix makes this run's stream ids unique, so every run starts from
// empty streams (exact expected versions start at no_stream, the baseline's
// heads at 0) without deleting anything.
func runPrefix(scenario string, t time.Time) string {
	return fmt.Sprintf("bench-%s-%s", scenario, strconv.FormatInt(t.UnixMilli(), 36))
}

// streamName is stream i of a run.
func streamName(prefix string, i int) string {
	return prefix + "-" + strconv.Itoa(i)
}

// workDraw is one worker's source of appends: which stream, fresh event
// ids, and the next payloads in turn. The server ingest and the raw
// baseline draw through it, so both send the same work.
type workDraw struct {
	pk       picker
	ids      []uuid.UUID
	evs      []*payload
	payloads []payload
	next     int
}

func newWorkDraw(c *Config, seed int64, worker int, payloads []payload) *workDraw {
	rng := newRNG(seed, worker)
	n := c.EventsPerAppend
	return &workDraw{
		pk:       newPicker(c, rng),
		ids:      make([]uuid.UUID, n),
		evs:      make([]*payload, n),
		payloads: payloads,
		next:     rng.IntN(len(payloads)),
	}
}

// draw picks the stream of the next append and fills ids and evs; it
// returns the stream's index and the events' size in bytes.
func (w *workDraw) draw() (stream, size int) {
	stream = w.pk.pick()
	for i := range w.ids {
		w.ids[i] = uuid.Must(uuid.NewV7())
		w.evs[i] = &w.payloads[w.next]
		size += w.evs[i].Size()
		w.next = (w.next + 1) % len(w.payloads)
	}
	return stream, size
}
