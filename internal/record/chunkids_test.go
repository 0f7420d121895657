package record

import (
	"errors"
	"testing"

	"github.com/google/uuid"
)

func TestChunkIDs(t *testing.T) {
	ev := func() Event { return Event{ID: uuid.New(), Type: "T", Data: []byte(`1`)} }
	c := Chunk{Stream: "s-1", FirstVersion: 7, Appends: []ChunkAppend{
		{ClientIDs: true, Events: []Event{ev(), ev()}},
		{ClientIDs: false, Events: []Event{ev()}}, // server-chosen ids: not retries
		{ClientIDs: true, Events: []Event{ev()}},
	}}
	want := map[uuid.UUID]int64{c.Appends[0].Events[0].ID: 7, c.Appends[0].Events[1].ID: 8, c.Appends[2].Events[0].ID: 10}
	b := AppendChunkIDs([]byte("x"), &c)[1:]
	got := map[uuid.UUID]int64{}
	if err := DecodeChunkIDs(b, 7, func(id uuid.UUID, v int64) { got[id] = v }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for id, v := range want {
		if got[id] != v {
			t.Fatalf("id %s at %d, want %d", id, got[id], v)
		}
	}
	none := AppendChunkIDs(nil, &Chunk{FirstVersion: 1, Appends: []ChunkAppend{{Events: []Event{ev()}}}})
	if err := DecodeChunkIDs(none, 1, func(uuid.UUID, int64) { t.Fatal("an id from a chunk without client ids") }); err != nil || len(none) != 1 {
		t.Fatalf("no client ids: %x, %v", none, err)
	}
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"unknown format": append([]byte{2}, b[1:]...),
		"truncated":      b[:len(b)-1],
		"offset back":    append(append([]byte{idsFormat, 1}, make([]byte, 16)...), append([]byte{0}, make([]byte, 16)...)...),
		"non-minimal":    append([]byte{idsFormat, 0x81, 0}, make([]byte, 16)...),
	} {
		if err := DecodeChunkIDs(bad, 1, func(uuid.UUID, int64) {}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
