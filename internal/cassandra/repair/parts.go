package repair

import (
	"bytes"
	"fmt"
	"time"

	"github.com/eventlog/eventlog/internal/record"
)

// part is one chunk of a row with what a reader gives its events: the
// seq and commit time (Unix milliseconds) of its record.
type part struct {
	seq   int64
	time  int64
	chunk record.Chunk
}

// decodeRow decodes a row's body as a read does (a chunk, or each part of
// a run, holding exactly the events of its versions) into its parts; a
// chunk row's part has the row's seq and time.
func decodeRow(first, last, seq int64, t time.Time, body []byte) ([]part, error) {
	if body == nil {
		return nil, fmt.Errorf("%w: no record", record.ErrCorrupt)
	}
	if first < 1 || first > last {
		return nil, fmt.Errorf("%w: versions %d..%d", record.ErrCorrupt, first, last)
	}
	if !record.IsRun(body) {
		p, err := decodeChunk(seq, t.UnixMilli(), first, last, body)
		if err != nil {
			return nil, err
		}
		return []part{p}, nil
	}
	var parts []part
	err := record.DecodeRun(body, first, last, func(rp *record.Part) error {
		// rp and its body are the decoder's, reused: the chunk's events
		// are decoded from a copy.
		p, err := decodeChunk(rp.Seq, rp.Time, rp.FirstVersion, rp.LastVersion, bytes.Clone(rp.Body))
		if err == nil {
			parts = append(parts, p)
		}
		return err
	})
	return parts, err
}

// decodeChunk decodes the chunk body of versions first..last.
func decodeChunk(seq, t, first, last int64, body []byte) (part, error) {
	appends, err := record.DecodeChunkBody(body)
	if err != nil {
		return part{}, err
	}
	p := part{seq: seq, time: t, chunk: record.Chunk{FirstVersion: first, Appends: appends}}
	if p.chunk.LastVersion() != last {
		return part{}, fmt.Errorf("%w: chunk %d..%d holds %d events", record.ErrCorrupt, first, last, p.chunk.LastVersion()-first+1)
	}
	return p, nil
}

// sameParts reports whether a and b hold the same chunks: seqs, times,
// versions, appends (whether their ids are the client's), and each
// event's id, type, data and metadata.
func sameParts(a, b []part) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		p, q := &a[i], &b[i]
		if p.seq != q.seq || p.time != q.time || p.chunk.FirstVersion != q.chunk.FirstVersion || len(p.chunk.Appends) != len(q.chunk.Appends) {
			return false
		}
		for j := range p.chunk.Appends {
			x, y := &p.chunk.Appends[j], &q.chunk.Appends[j]
			if x.ClientIDs != y.ClientIDs || len(x.Events) != len(y.Events) {
				return false
			}
			for k := range x.Events {
				e, f := &x.Events[k], &y.Events[k]
				if e.ID != f.ID || e.Type != f.Type || !bytes.Equal(e.Data, f.Data) || !bytes.Equal(e.Metadata, f.Metadata) ||
					(e.Metadata == nil) != (f.Metadata == nil) {
					return false
				}
			}
		}
	}
	return true
}
