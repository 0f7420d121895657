package main

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

func TestPayloadSizes(t *testing.T) {
	for _, size := range eventSizes {
		ps := newPayloads(size, payloadPoolSize, payloadSeed)
		total := 0
		for i := range ps {
			p := &ps[i]
			got := p.Size()
			total += got
			// Each is drawn within ±10% of size; generation adds a little.
			if float64(got) < 0.85*float64(size) || float64(got) > 1.15*float64(size) {
				t.Fatalf("size %d: payload %d is %d bytes", size, i, got)
			}
			if !json.Valid(p.Data) || !json.Valid(p.Metadata) {
				t.Fatalf("size %d: payload %d is not JSON", size, i)
			}
			if err := log.ValidateEventType(p.Type); err != nil {
				t.Fatalf("type %q: %v", p.Type, err)
			}
		}
		mean := float64(total) / float64(len(ps))
		if mean < 0.95*float64(size) || mean > 1.05*float64(size) {
			t.Fatalf("size %d: mean %.0f bytes", size, mean)
		}
	}
}

func TestPayloadsVaryAndRepeat(t *testing.T) {
	a := newPayloads(1024, 16, 7)
	b := newPayloads(1024, 16, 7)
	distinct := map[string]bool{}
	for i := range a {
		if string(a[i].Data) != string(b[i].Data) {
			t.Fatal("the same seed must give the same payloads (server and baseline send the same events)")
		}
		distinct[string(a[i].Data)] = true
	}
	if len(distinct) != len(a) {
		t.Fatalf("%d distinct payloads of %d", len(distinct), len(a))
	}
}

func TestEncodeAppend(t *testing.T) {
	ps := newPayloads(200, 3, 1)
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	evs := []*payload{&ps[0], &ps[1], &ps[2]}
	for _, exp := range []int64{expectedAny, 0, 42} {
		body := encodeAppend(nil, exp, ids, evs)
		var got struct {
			Expected log.ExpectedVersion `json:"expected_version"`
			Events   []struct {
				ID       uuid.UUID       `json:"id"`
				Type     string          `json:"type"`
				Data     json.RawMessage `json:"data"`
				Metadata json.RawMessage `json:"metadata"`
			} `json:"events"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if want := log.ExpectedVersion(exp); got.Expected != want {
			t.Fatalf("expected_version %v, want %v", got.Expected, want)
		}
		if len(got.Events) != 3 {
			t.Fatalf("%d events", len(got.Events))
		}
		for i, e := range got.Events {
			if e.ID != ids[i] || e.Type != evs[i].Type || string(e.Data) != string(evs[i].Data) || string(e.Metadata) != string(evs[i].Metadata) {
				t.Fatalf("event %d: %+v", i, e)
			}
		}
	}
}

func TestAppendUUID(t *testing.T) {
	for range 100 {
		id := uuid.New()
		if got, want := string(appendUUID(nil, id)), id.String(); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
}
