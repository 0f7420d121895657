package record

import (
	"bytes"
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
	if err := DecodeChunkIDs(none, 1, func(uuid.UUID, int64) { t.Fatal("an id from a chunk without client ids") }); err != nil || len(none) != 1+4 {
		t.Fatalf("no client ids: %x, %v", none, err)
	}
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"unknown format": append([]byte{3}, b[1:]...),
		"truncated":      b[:len(b)-1],
		"offset back":    append(append([]byte{idsFormat, 1}, make([]byte, 16)...), append([]byte{0}, make([]byte, 16)...)...),
		"non-minimal":    append([]byte{idsFormat, 0x81, 0}, make([]byte, 16)...),
	} {
		if err := DecodeChunkIDs(bad, 1, func(uuid.UUID, int64) {}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// TestChunkIDsChecksum: an id list with any byte changed (a disk's error
// in a row's ids column, memory's in a shard's unwritten chunk) is
// ErrCorrupt, before any id is given: never an id list with another id,
// which would not recognise the retry of the append it names (a retry
// taken as new is written twice), nor one with fewer ids. A list of
// before the checksum (idsFormat) still decodes.
func TestChunkIDsChecksum(t *testing.T) {
	id := func(i byte) uuid.UUID { return uuid.UUID{15: i, 0: 0x10} }
	c := Chunk{Stream: "s-1", FirstVersion: 3, Appends: []ChunkAppend{
		{ClientIDs: true, Events: []Event{{ID: id(1)}, {ID: id(2)}}},
		{ClientIDs: true, Events: []Event{{ID: id(3)}}},
	}}
	b := AppendChunkIDs(nil, &c)
	for i := range b {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(b)
			bad[i] ^= bit
			var got []uuid.UUID
			err := DecodeChunkIDs(bad, 3, func(id uuid.UUID, _ int64) { got = append(got, id) })
			if !errors.Is(err, ErrCorrupt) || len(got) != 0 {
				t.Errorf("byte %d ^ %#x: ids %v, err %v; want none and ErrCorrupt", i, bit, got, err)
			}
		}
	}
	// The same list as a build before the checksum wrote it.
	id1, id2, id3 := id(1), id(2), id(3)
	old := append([]byte{idsFormat, 0}, id1[:]...)
	old = append(append(old, 1), id2[:]...)
	old = append(append(old, 2), id3[:]...)
	got := map[uuid.UUID]int64{}
	if err := DecodeChunkIDs(old, 3, func(id uuid.UUID, v int64) { got[id] = v }); err != nil || len(got) != 3 || got[id(1)] != 3 || got[id(3)] != 5 {
		t.Fatalf("unchecked list: %v, %v", got, err)
	}
}
