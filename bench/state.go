package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"time"
)

// stateLag is how far behind the head the newest snapshot may be for the
// state-load target (issue 3: "a snapshot at most 1,000 events behind").
const stateLag = 1000

// putSnapshots stores snapshots of a generated aggregate: every
// --snapshot-every versions when the stream was just built (all), and in
// any case one at head-1000 unless a snapshot at least that recent exists.
// It returns the version of the newest one.
func (rr *replayRun) putSnapshots(ctx context.Context, all bool) (int64, error) {
	k := int64(rr.e.cfg.SnapshotEvery)
	// The newest snapshot is put exactly stateLag behind the head: the
	// state load is timed in the worst case the target allows.
	lagged := max(1, rr.head-stateLag)
	var versions []int64
	if all {
		for v := k; v < lagged; v += k {
			versions = append(versions, v)
		}
	}
	newest := int64(0)
	if len(versions) > 0 {
		newest = versions[len(versions)-1]
	} else {
		var latest struct {
			Version int64 `json:"version"`
		}
		err := getJSON(ctx, rr.client, rr.e.cfg.URL, "/v1/streams/"+url.PathEscape(rr.stream)+"/snapshots/latest", &latest)
		if err != nil && code(err) != "snapshot_not_found" {
			return 0, fmt.Errorf("latest snapshot: %w", err)
		}
		newest = latest.Version
	}
	if newest < lagged {
		versions = append(versions, lagged)
		newest = lagged
	}
	rng := rand.New(rand.NewPCG(payloadSeed, uint64(rr.head)))
	fmt.Fprintf(rr.e.stderr, "putting %d snapshots (newest at version %d of %d)\n", len(versions), newest, rr.head)
	for _, v := range versions {
		path := "/v1/streams/" + url.PathEscape(rr.stream) + "/snapshots/" + strconv.FormatInt(v, 10)
		if err := putJSON(ctx, rr.client, rr.e.cfg.URL, path, aggregateState(rng, v), nil); err != nil {
			return 0, fmt.Errorf("put snapshot %d: %w", v, err)
		}
	}
	return newest, nil
}

// aggregateState is a realistic order aggregate of a few KB: customer,
// lines, totals and a bounded history, as an application would snapshot.
func aggregateState(rng *rand.Rand, version int64) []byte {
	type line struct {
		SKU       string  `json:"sku"`
		Name      string  `json:"name"`
		Quantity  int     `json:"quantity"`
		UnitPrice float64 `json:"unit_price"`
	}
	type change struct {
		Version int64  `json:"version"`
		Status  string `json:"status"`
		At      string `json:"at"`
	}
	st := struct {
		OrderID  string   `json:"order_id"`
		Version  int64    `json:"version"`
		Status   string   `json:"status"`
		Customer address  `json:"customer_address"`
		Lines    []line   `json:"lines"`
		Total    float64  `json:"total"`
		Coupons  []string `json:"coupons"`
		History  []change `json:"history"`
	}{
		OrderID: fmt.Sprintf("order-%08x", rng.Uint32()), Version: version, Status: "open",
		Customer: address{Street: "12 Rua Augusta", City: cities[rng.IntN(len(cities))], Postal: "1100-053", Country: "PT"},
	}
	for i := range 20 {
		l := line{SKU: fmt.Sprintf("SKU-%04d", rng.IntN(10000)), Name: products[i%len(products)], Quantity: 1 + rng.IntN(4), UnitPrice: float64(rng.IntN(10000)) / 100}
		st.Lines = append(st.Lines, l)
		st.Total += float64(l.Quantity) * l.UnitPrice
	}
	for i := range 3 {
		st.Coupons = append(st.Coupons, fmt.Sprintf("SPRING-%d", i))
	}
	for i := range 15 {
		st.History = append(st.History, change{Version: max(1, version-int64(15-i)*10), Status: eventTypes[i%len(eventTypes)],
			At: time.Date(2026, 5, 1, 10, i, 0, 0, time.UTC).Format(time.RFC3339)})
	}
	b, _ := json.Marshal(st)
	return b
}

// loadStates times --state-loads GET /state requests at the head, checking
// each answer is the head: snapshot version + tail events. A load is
// timed until its whole answer arrived, as a replay is (which the ratio
// compares it with); decoding it for the check comes after. (Until
// 2026-12-05 the time included the client's encoding/json decode of the
// answer, 2-3 ms of a 1,000-event load.)
func (rr *replayRun) loadStates(ctx context.Context, rec *recorder) error {
	path := "/v1/streams/" + url.PathEscape(rr.stream) + "/state"
	for range rr.e.cfg.StateLoads {
		var st struct {
			Version  int64 `json:"version"`
			Snapshot *struct {
				Version int64           `json:"version"`
				State   json.RawMessage `json:"state"`
			} `json:"snapshot"`
			Events []json.RawMessage `json:"events"`
		}
		t0 := time.Now()
		body, err := getBody(ctx, rr.client, rr.e.cfg.URL, path)
		now := time.Now()
		if err == nil {
			err = json.Unmarshal(body, &st)
		}
		if err != nil {
			rec.latency(now, now.Sub(t0), code(err), err)
			return err
		}
		base := int64(0)
		size := 0
		if st.Snapshot != nil {
			base = st.Snapshot.Version
			size += len(st.Snapshot.State)
		}
		if st.Version != rr.head || base+int64(len(st.Events)) != rr.head {
			return fmt.Errorf("state: version %d, snapshot %d + %d events; want head %d", st.Version, base, len(st.Events), rr.head)
		}
		for _, e := range st.Events {
			size += len(e)
		}
		rec.live.Add(int64(len(st.Events)))
		rec.count(now, len(st.Events), size)
		rec.latency(now, now.Sub(t0), "", nil)
	}
	return nil
}

// replayRatios compares the reads by their median events/s over rounds:
// NDJSON against the best raw read and against the naive paged read, and
// a state load's median time against a full NDJSON replay.
func replayRatios(phases []Phase) []Ratio {
	rates := map[string][]float64{}
	durs := map[string][]float64{}
	var stateP50 float64
	for _, p := range phases {
		switch p.Kind {
		case "read":
			rates[p.Name] = append(rates[p.Name], p.EventsPerS)
			durs[p.Name] = append(durs[p.Name], p.DurationS)
		case "state":
			stateP50 = float64(p.Latency.P50US) / 1e6
		}
	}
	nd := median(rates["ndjson"])
	var out []Ratio
	if nd == 0 {
		return nil
	}
	best, bestName := 0.0, ""
	for _, n := range []string{"raw-paged", "raw-parallel"} {
		if m := median(rates[n]); m > best {
			best, bestName = m, n
		}
	}
	if best > 0 {
		out = append(out, roundRatio("ndjson/"+bestName+" events/s", nd/best, rates["ndjson"], rates[bestName], ">= 0.8"))
	}
	if f := median(rates["feed-ndjson"]); f > 0 {
		out = append(out, roundRatio("feed-ndjson/ndjson events/s", f/nd, rates["feed-ndjson"], rates["ndjson"], ">= 0.5"))
	}
	if pg := median(rates["paged-json"]); pg > 0 {
		out = append(out, roundRatio("ndjson/paged-json events/s", nd/pg, rates["ndjson"], rates["paged-json"], ">= 2"))
	}
	if d := median(durs["ndjson"]); stateP50 > 0 && d > 0 {
		out = append(out, Ratio{Name: "state p50 / ndjson full replay time", Value: stateP50 / d, Target: "<= 0.01"})
	}
	return out
}

// roundRatio is a ratio of a's rate to b's: with rounds, the median of
// the rounds' ratios, as bench compare quotes it (a round pairs readers
// that ran in the same round, so a slow spell of the shared machine
// weighs on both sides of one ratio); otherwise whole, the ratio of the
// medians.
func roundRatio(name string, whole float64, a, b []float64, target string) Ratio {
	r := Ratio{Name: name, Value: whole, Rounds: ratioRounds(a, b), Target: target}
	if len(r.Rounds) > 0 {
		r.Value = median(r.Rounds)
	}
	return r
}

// ratioRounds pairs a[i]/b[i] when there is more than one round.
func ratioRounds(a, b []float64) []float64 {
	if len(a) < 2 || len(a) != len(b) {
		return nil
	}
	out := make([]float64, len(a))
	for i := range a {
		if b[i] <= 0 {
			return nil // a round without a divisor: no pairs to take a median of
		}
		out[i] = a[i] / b[i]
	}
	return out
}
