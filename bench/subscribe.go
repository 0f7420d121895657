package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra"
)

// deliveryTarget is the target for the p99 append-to-delivery
// latency on the local node while ingest runs.
const deliveryTarget = time.Second

// connectTimeout bounds the wait for every subscription's first answer
// before the load starts.
const connectTimeout = 10 * time.Second

// runSubscribe runs ingest's load (open loop, --rate) while --subscribers
// follow --feed over HTTP, and times each event from its append's first
// send (and from its acknowledgement) to its delivery. The subscriptions
// start from=now and are connected before the first append, so every
// acknowledged event of the feed must arrive: after the load it waits up
// to --drain for stragglers, and a missing, duplicated or out-of-order
// delivery fails the run.
func runSubscribe(ctx context.Context, e *runEnv) (*Result, error) {
	c := e.cfg
	feed, err := parseFeedFlag(c.Feed)
	if err != nil {
		return nil, err
	}
	l := newIngestLoad(c, subscribePrefix(feed, e.started), newPayloads(c.EventSize, payloadPoolSize, payloadSeed), e.started.UnixNano())
	if err := checkServer(ctx, l.client, c.URL); err != nil {
		return nil, err
	}
	d := newDeliveries(c.Subscribers, func(typ string) bool { return feedExpects(feed, typ) })
	l.track = d

	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	subs := make([]*feedSubscriber, c.Subscribers)
	failed := make(chan error, c.Subscribers)
	var wg sync.WaitGroup
	hc := newHTTPClient(c.Subscribers)
	var api *client.Client
	if c.Subscriber == "client" {
		if api, err = client.New(client.Options{BaseURL: c.URL, HTTPClient: hc}); err != nil {
			return nil, err
		}
	}
	for i := range subs {
		s := &feedSubscriber{n: i, api: api, client: hc, base: c.URL, feed: feed, track: d, connected: make(chan struct{})}
		subs[i] = s
		wg.Go(func() {
			if err := s.run(subCtx); err != nil {
				failed <- err
			}
		})
	}
	stopAll := func() {
		stopSubs()
		wg.Wait()
	}
	if err := waitConnected(ctx, subs, failed); err != nil {
		stopAll()
		return nil, err
	}
	fmt.Fprintf(e.stderr, "subscribe: %d subscription(s) to %s connected\n", len(subs), feed)

	wm := startWatermarkSampler(c)
	stopProgress := deliveryProgress(e.stderr, d)
	measureAt := time.Now().Add(c.Warmup)
	ingest := e.measureFrom(ctx, measureAt, "ingest", "server", 0, e.loop(c.Warmup, c.Duration), l.newOp, true)
	drainFrom := time.Now()
	complete := d.wait(ctx, c.Drain)
	drained := time.Since(drainFrom)
	stopProgress()
	lag := wm.stop()
	stopAll()

	fromSend, fromAck := newRecorder(measureAt), newRecorder(measureAt)
	t := d.record(measureAt, fromSend, fromAck)
	end := measureAt.Add(c.Duration)
	send := fromSend.phase("delivery", "delivery", end)
	ack := fromAck.phase("delivery-after-ack", "delivery", end)
	for _, ph := range []*Phase{&send, &ack} {
		ph.OffsetS = ingest.OffsetS
		addTallyErrors(ph, t)
	}
	reconnects := 0
	var lastErr error
	for _, s := range subs {
		reconnects += s.reconnects
		if s.lastErr != nil {
			lastErr = s.lastErr
		}
	}
	send.Extra = map[string]float64{
		"subscribers": float64(c.Subscribers), "appended": float64(t.appended), "acknowledged": float64(t.acked),
		"delivered": float64(t.delivered), "missing": float64(t.missing), "duplicates": float64(t.duplicates),
		"out_of_order": float64(t.disorder), "wrong_feed": float64(t.wrongFeed), "foreign": float64(t.foreign),
		"delivered_unacknowledged": float64(t.unackedDelivered), "delivered_before_ack": float64(t.beforeAck),
		"reconnects": float64(reconnects), "drain_s": drained.Seconds(),
	}
	// send.Extra is shared with the copy in res: the lag figures below
	// reach the result.
	res := &Result{Phases: []Phase{ingest, send, ack}}
	res.Notes = append(res.Notes, fmt.Sprintf(
		"feed %s, %d subscriber(s): %d of %d acknowledged events delivered to each (sum %d), %d missing, %d duplicates, %d out of order, %d not in the feed; waited %.1f s for stragglers",
		feed, c.Subscribers, t.delivered/int64(c.Subscribers), t.acked, t.delivered, t.missing, t.duplicates, t.disorder, t.wrongFeed, drained.Seconds()))
	if t.unackedDelivered > 0 || t.foreign > 0 || t.beforeAck > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("also delivered: %d events whose append failed (outcome unknown, then committed), %d before their append's answer was read, %d not appended by this run",
			t.unackedDelivered, t.beforeAck, t.foreign))
	}
	if reconnects > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("subscriptions reconnected %d times (resuming from their last position); last cause: %v", reconnects, lastErr))
	}
	if lag.err != nil {
		res.Notes = append(res.Notes, "watermark lag not measured: "+lag.err.Error())
	} else if lag.samples > 0 {
		l := latencyOf(lag.hist)
		for k, v := range map[string]int64{"p50": l.P50US, "p99": l.P99US, "max": l.MaxUS} {
			send.Extra["watermark_lag_"+k+"_ms"] = float64(v) / 1e3
		}
		res.Notes = append(res.Notes, fmt.Sprintf("feed watermark lag (now − feed_watermark, %d samples every %v): p50 %.0f ms, p99 %.0f ms, max %.0f ms",
			lag.samples, watermarkEvery, float64(l.P50US)/1e3, float64(l.P99US)/1e3, float64(l.MaxUS)/1e3))
	}
	if send.Latency.Count > 0 {
		res.Ratios = append(res.Ratios, Ratio{Name: "delivery p99 / 1 s", Value: float64(send.Latency.P99US) / float64(deliveryTarget.Microseconds()), Target: "<= 1"})
	}
	switch {
	case ctx.Err() != nil:
		return res, nil // interrupted: run says so; stragglers were not awaited
	case !t.ok():
		return res, fmt.Errorf("the feed did not deliver exactly the acknowledged events: %d missing, %d duplicates, %d out of order, %d not in the feed", t.missing, t.duplicates, t.disorder, t.wrongFeed)
	case !complete:
		return res, fmt.Errorf("deliveries still outstanding after --drain %v", c.Drain)
	case t.acked == 0:
		return res, errors.New("no event of the feed was acknowledged")
	}
	return res, nil
}

// waitConnected waits for every subscription's first answer.
func waitConnected(ctx context.Context, subs []*feedSubscriber, failed <-chan error) error {
	timeout := time.NewTimer(connectTimeout)
	defer timeout.Stop()
	for _, s := range subs {
		select {
		case <-s.connected:
		case err := <-failed:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("subscriber %d: no answer from the feed subscription within %v", s.n, connectTimeout)
		}
	}
	return nil
}

// addTallyErrors puts the delivery faults into ph's error counts (the
// table and smoke's checks read them there).
func addTallyErrors(ph *Phase, t deliveryTally) {
	for code, n := range map[string]int64{"missing": t.missing, "duplicate": t.duplicates, "out_of_order": t.disorder, "wrong_feed": t.wrongFeed} {
		if n == 0 {
			continue
		}
		if ph.Errors == nil {
			ph.Errors = map[string]int64{}
		}
		ph.Errors[code] = n
	}
}

// deliveryProgress prints the deliveries once a second until stopped.
func deliveryProgress(w io.Writer, d *deliveries) func() {
	stop, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n, left := d.progress()
				fmt.Fprintf(w, "%-22s %10d delivered/s now %10d delivered  %d awaited\n", "delivery", n-last, n, left)
				last = n
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
	}
}

// watermarkEvery is how often the feed watermark is sampled.
const watermarkEvery = 100 * time.Millisecond

// watermarkLag is how far the feed watermark trailed the clock.
type watermarkLag struct {
	hist    *hdrhistogram.Histogram
	samples int
	err     error
}

type watermarkSampler struct {
	stopc chan struct{}
	done  chan watermarkLag
}

// startWatermarkSampler reads the server keyspace's feed watermark every
// watermarkEvery and records now − watermark (the feed delay the
// maintainer imposes, before any read or delivery). Without Cassandra or
// a watermark row it records nothing and says why.
func startWatermarkSampler(c *Config) *watermarkSampler {
	w := &watermarkSampler{stopc: make(chan struct{}), done: make(chan watermarkLag, 1)}
	go func() {
		lag := watermarkLag{hist: newHist(3)}
		defer func() { w.done <- lag }()
		session, err := openRawSession(c, c.Keyspace, 1)
		if err != nil {
			lag.err = err
			return
		}
		defer session.Close()
		t := time.NewTicker(watermarkEvery)
		defer t.Stop()
		for {
			select {
			case <-w.stopc:
				return
			case <-t.C:
			}
			var (
				watermark, started time.Time
				pending            *time.Time
				period             int64
			)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := session.Query(cassandra.Statements.Watermark).WithContext(ctx).Scan(&watermark, &pending, &period, &started)
			now := time.Now()
			cancel()
			switch {
			case errors.Is(err, gocql.ErrNotFound):
				lag.err = fmt.Errorf("keyspace %s has no feed watermark (is it the server's? --keyspace)", c.Keyspace)
				return
			case err != nil:
				continue // a slow read: skip the sample
			}
			lag.hist.RecordValue(min(max(now.Sub(watermark).Microseconds(), histMinUS), histMaxUS))
			lag.samples++
		}
	}()
	return w
}

func (w *watermarkSampler) stop() watermarkLag {
	close(w.stopc)
	return <-w.done
}
