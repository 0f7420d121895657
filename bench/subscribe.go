package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/eventlog/eventlog/client"
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
	if err := l.start(ctx); err != nil {
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

	stopProgress := deliveryProgress(e.stderr, d)
	measureAt := time.Now().Add(c.Warmup)
	ingest := e.measureFrom(ctx, measureAt, "ingest", "server", 0, e.loop(c.Warmup, c.Duration), l.newOp, true)
	drainFrom := time.Now()
	complete := d.wait(ctx, c.Drain)
	drained := time.Since(drainFrom)
	stopProgress()
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
