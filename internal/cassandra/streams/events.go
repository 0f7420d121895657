package streams

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// Read calls fn for each event of r, in order (log.Store.ReadStream). The
// event passed to fn is reused for the next one; its byte slices may be
// kept. A stream without a bucket is log.ErrStreamNotFound; an empty read
// of one with a bucket returns nil, and whether it has events then is the
// caller's to find out (its first bucket may be indexed while its first
// chunk is being written).
func (s *Store) Read(ctx context.Context, r log.ReadRange, fn func(*log.RecordedEvent) error) error {
	if _, err := log.ParseStreamID(string(r.Stream)); err != nil {
		return err
	}
	if r.From < 0 || r.To < 0 || r.Limit < 0 || r.To != 0 && r.To < r.From {
		return &log.ValidationError{Code: log.CodeInvalidVersion, Message: fmt.Sprintf("invalid range from=%d to=%d", r.From, r.To)}
	}
	bs, err := s.Buckets(ctx, r.Stream)
	if err != nil {
		return err
	}
	if len(bs) == 0 {
		// A bucket's index row is written before its chunks: no row, no
		// event.
		if !r.UntilTime.IsZero() {
			return notYet(r)
		}
		return fmt.Errorf("stream %s: %w", r.Stream, log.ErrStreamNotFound)
	}
	return s.ReadIn(ctx, r, bs, fn)
}

// notYet is the error of a read as of r.UntilTime, when no event of the
// stream was committed by then.
func notYet(r log.ReadRange) error {
	return fmt.Errorf("stream %s at %s: %w", r.Stream, r.UntilTime.UTC().Format(time.RFC3339Nano), log.ErrStreamNotYet)
}

// ReadIn is Read of a stream whose bucket index, in ascending order, is bs
// (as Buckets returned it): one round of reads fewer.
func (s *Store) ReadIn(ctx context.Context, r log.ReadRange, bs []Bucket, fn func(*log.RecordedEvent) error) error {
	if !r.UntilTime.IsZero() {
		v, err := s.versionAt(ctx, r.Stream, bs, r.UntilTime)
		if err != nil {
			return err
		}
		if v == 0 {
			return notYet(r)
		}
		var ok bool
		if r, ok = r.Cut(v); !ok {
			return nil
		}
	}
	from, to := max(r.From, 1), r.To
	if to == 0 {
		to = math.MaxInt64
	}
	left := r.Limit
	if left == 0 {
		left = math.MaxInt
	}
	ev := log.RecordedEvent{Stream: r.Stream}
	err := s.chunks(ctx, r.Stream, bs, from, r.To, r.Backward, int64(r.Limit), r.Borrowed, func(c *Chunk) error {
		ev.Time = c.Time
		emit := func(v int64, i, j int) error {
			if v < from || v > to {
				return nil
			}
			e := &c.Appends[i].Events[j]
			ev.Version, ev.ID, ev.Type, ev.Data, ev.Metadata = v, e.ID, e.Type, e.Data, e.Metadata
			if err := fn(&ev); err != nil {
				return err
			}
			if left--; left == 0 {
				return log.ErrStop
			}
			return nil
		}
		if !r.Backward {
			v := c.FirstVersion
			for i := range c.Appends {
				for j := range c.Appends[i].Events {
					if err := emit(v, i, j); err != nil {
						return err
					}
					v++
				}
			}
			return nil
		}
		v := c.LastVersion
		for i := len(c.Appends) - 1; i >= 0; i-- {
			for j := len(c.Appends[i].Events) - 1; j >= 0; j-- {
				if err := emit(v, i, j); err != nil {
					return err
				}
				v--
			}
		}
		return nil
	})
	if errors.Is(err, log.ErrStop) {
		return nil
	}
	return err
}

// VersionAt returns the last version committed at or before t (0: none).
// Commit times never decrease along a stream, so the versions committed by
// t are a prefix: a bucket is chosen by its opening time (the commit time
// of its first chunk), then the chunk by binary search, one probe per step.
func (s *Store) VersionAt(ctx context.Context, stream log.StreamID, t time.Time) (int64, error) {
	if _, err := log.ParseStreamID(string(stream)); err != nil {
		return 0, err
	}
	bs, err := s.Buckets(ctx, stream)
	if err != nil {
		return 0, err
	}
	return s.versionAt(ctx, stream, bs, t)
}

func (s *Store) versionAt(ctx context.Context, stream log.StreamID, bs []Bucket, t time.Time) (int64, error) {
	// The last bucket opened at or before t.
	i := sort.Search(len(bs), func(i int) bool { return bs[i].OpenedAt.After(t) }) - 1
	if i < 0 {
		return 0, nil
	}
	b := bs[i]
	// Search versions lo..hi of the bucket for the last one with time ≤ t:
	// lo (its first version) qualifies, since the bucket opened at or
	// before t with it.
	last, _, ok, err := s.lastOf(ctx, stream, b.Number)
	if err != nil || !ok {
		return b.FirstVersion - 1, err
	}
	lo, hi := b.FirstVersion, last
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		first, end, ct, ok, err := s.ChunkAt(ctx, stream, b.Number, mid)
		if err != nil {
			return 0, err
		}
		if !ok {
			hi = mid - 1
			continue
		}
		if ct.After(t) {
			hi = first - 1
		} else {
			lo = end
		}
	}
	return lo, nil
}

func (s *Store) lastOf(ctx context.Context, stream log.StreamID, bucket int64) (int64, time.Time, bool, error) {
	c, ok, err := s.chunkInfo(ctx, cqlLastChunk, stream, bucket)
	return c.last, c.time, ok, err
}
