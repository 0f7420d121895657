package record

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestPlainChunkBodyRefusesUnknownFormat: PlainChunkBody, which a
// compaction copies each chunk through into a block, refuses a body that
// no reader decodes (an empty one, or one whose format byte is no chunk
// body's) with ErrCorrupt. It must neither panic (an empty record cell
// crashed the server from its compaction goroutine) nor give the body a
// valid format byte (a row readers refuse, ErrCorrupt, would come out of
// the compaction as a block they read).
func TestPlainChunkBodyRefusesUnknownFormat(t *testing.T) {
	c := Chunk{FirstVersion: 1, Appends: []ChunkAppend{{ClientIDs: true, Events: jsonEvents(1)}}}
	plain := appendPlainChunkBody(nil, &c, chunkBodyLen(&c)) // format, no checksum: as before formatChecked
	with := func(f byte) []byte { return append([]byte{f}, plain[1:]...) }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"Nil", nil},
		{"Empty", []byte{}},
		{"FormatByteFlipped", with(format ^ 1<<3)}, // 1 -> 9
		{"FormatByteZero", with(0)},
		{"RunFormat", with(formatRun)},
		{"RunCheckedFormat", with(formatRunChecked)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeChunkBody(tc.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeChunkBody: %v, want ErrCorrupt (the premise: readers refuse it)", err)
			}
			got, err := PlainChunkBody(tc.b)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("PlainChunkBody: %d bytes starting % x, %v; want ErrCorrupt", len(got), got[:min(len(got), 1)], err)
			}
		})
	}
	// What it takes: a plain body as it is, a checked one without its
	// checksum (format), a compressed one uncompressed.
	big := Chunk{FirstVersion: 1, Appends: []ChunkAppend{{ClientIDs: true, Events: jsonEvents(40)}}}
	bigPlain := appendPlainChunkBody(nil, &big, chunkBodyLen(&big))
	for _, tc := range []struct {
		name string
		b    []byte
		want []byte
	}{
		{"Plain", plain, plain},
		{"Checked", AppendChunkBody(nil, &c), plain},
		{"Compressed", AppendChunkBody(nil, &big), bigPlain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "Compressed" && !compressed(tc.b) {
				t.Fatal("the premise: a 40-event body is stored compressed")
			}
			got, err := PlainChunkBody(tc.b)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("PlainChunkBody: %d bytes, %v; want the %d-byte plain body", len(got), err, len(tc.want))
			}
		})
	}
}

// FuzzPlainChunkBody: PlainChunkBody never panics, fails only with
// ErrCorrupt, and launders nothing: what it returns is a plain body
// (format) that decodes as b does, and a body it takes that decodes was
// a body that decodes already.
func FuzzPlainChunkBody(f *testing.F) {
	c := Chunk{FirstVersion: 1, Appends: []ChunkAppend{{ClientIDs: true, Events: jsonEvents(1)}}}
	big := Chunk{FirstVersion: 1, Appends: []ChunkAppend{{ClientIDs: true, Events: jsonEvents(40)}}}
	plain := appendPlainChunkBody(nil, &c, chunkBodyLen(&c))
	f.Add([]byte(nil))
	f.Add(plain)
	f.Add(AppendChunkBody(nil, &c))
	f.Add(AppendChunkBody(nil, &big))
	f.Add(append([]byte{format ^ 1<<3}, plain[1:]...))
	f.Add(append([]byte{formatRun}, plain[1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := DecodeChunkBody(b)
		got, err := PlainChunkBody(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("PlainChunkBody: %v, want ErrCorrupt", err)
			}
			if wantErr == nil {
				t.Fatalf("PlainChunkBody refused a body that decodes: %v", err)
			}
			return
		}
		if got[0] != format {
			t.Fatalf("PlainChunkBody gave format %d, want %d", got[0], format)
		}
		again, err := DecodeChunkBody(got)
		switch {
		case (err == nil) != (wantErr == nil):
			t.Fatalf("the body decodes with %v, what PlainChunkBody made of it with %v", wantErr, err)
		case err == nil && !reflect.DeepEqual(again, want):
			t.Fatal("what PlainChunkBody made of the body decodes to other appends")
		}
	})
}
