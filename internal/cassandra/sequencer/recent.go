package sequencer

import (
	"slices"

	"github.com/google/uuid"
)

// recentCap bounds the versions a head's recentIDs covers: an appender
// whose expected version is more than this behind is checked against the
// stream as before.
const recentCap = 64

// maxRecent bounds the heads of a shard with recent ids (1 MiB of them
// at recentCap): enough for the streams contended at a time; a conflict
// on another stream is checked against the stream, as before.
const maxRecent = 1024

// makeRecent gives h an empty record of recent ids, which starts at its
// next batch, unless the shard's heads have maxRecent of them.
func (hs *heads) makeRecent(h *head) {
	if h.recent == nil && hs.recent < maxRecent {
		h.recent = &recentIDs{}
		hs.recent++
	}
}

// recentIDs is the event ids, client-chosen or made by the server, of a
// stream's newest versions as this owner committed them. A head gets one
// at its first exact-version conflict that had to be checked against the
// stream (a contended stream): later conflicts whose versions it covers
// are answered from it, at their commit, instead of each waiting for the
// stream's write and three reads on the shard's one checker. An append
// none of whose ids is at the versions it expected to take is neither a
// retry (sameEvents needs the same ids there) nor partly stored there,
// which is all the check's reads could find (streams.Store.MatchAppend).
type recentIDs struct {
	first int64       // the version of ids[0]; 0 before the first add
	ids   []uuid.UUID // versions first, first+1, …
}

// add records the ids of the events committed at versions from, from+1,
// …; a gap since the last recorded version starts the record again.
func (r *recentIDs) add(from int64, ids []uuid.UUID) {
	if from != r.first+int64(len(r.ids)) {
		r.first, r.ids = from, r.ids[:0]
	}
	r.ids = append(r.ids, ids...)
	if over := len(r.ids) - recentCap; over > 0 {
		r.ids = slices.Delete(r.ids, 0, over)
		r.first += int64(over)
	}
}

// at returns the id at version v, if r holds it.
func (r *recentIDs) at(v int64) (uuid.UUID, bool) {
	if r == nil || v < r.first || v >= r.first+int64(len(r.ids)) {
		return uuid.UUID{}, false
	}
	return r.ids[v-r.first], true
}

// notAt reports whether it is known that none of ids is at versions lo
// through hi: each of those versions is either in h's recent ids or taken
// by an earlier append of the batch (tv.batch, from h.version+1 on), and
// none holds one of ids.
func notAt(h *head, tv *tentative, lo, hi int64, ids []uuid.UUID) bool {
	for v := lo; v <= hi; v++ {
		var id uuid.UUID
		if v > h.version {
			i := v - h.version - 1
			if i >= int64(len(tv.batch)) {
				return false
			}
			id = tv.batch[i]
		} else {
			var ok bool
			if id, ok = h.recent.at(v); !ok {
				return false
			}
		}
		if slices.Contains(ids, id) {
			return false
		}
	}
	return true
}
