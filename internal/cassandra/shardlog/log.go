package shardlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
)

// schema/schema.cql: shard_log.
const (
	cqlStatics = `SELECT epoch, last_seq, filled, floor FROM shard_log WHERE shard = ? AND segment = ? LIMIT 1`
	cqlCommit  = `UPDATE shard_log SET last_seq = ?, filled = ?, floor = ? WHERE shard = ? AND segment = ? IF epoch = ? AND last_seq = ?`
	cqlInsert  = `INSERT INTO shard_log (shard, segment, seq, time, commit_id, record) VALUES (?, ?, ?, ?, ?, ?)`
	cqlRow     = `SELECT commit_id FROM shard_log WHERE shard = ? AND segment = ? AND seq = ?`
	cqlFence   = `UPDATE shard_log SET epoch = ? WHERE shard = ? AND segment = ? IF epoch < ?`
	cqlOpen    = `UPDATE shard_log SET epoch = ?, last_seq = ?, filled = ?, floor = ? WHERE shard = ? AND segment = ? IF epoch = null`
	cqlFloor   = `UPDATE shard_log SET floor = ? WHERE shard = ? AND segment = ? IF epoch = ? AND last_seq = ?`
	cqlRows    = `SELECT seq, time, record, last_seq, floor FROM shard_log WHERE shard = ? AND segment = ? AND seq > ? AND seq <= ?`
	// Without the statics, which every commit rewrites: Cassandra then
	// reads only the SSTables whose rows overlap the range (CommittedRows).
	cqlRowsOnly = `SELECT seq, time, record FROM shard_log WHERE shard = ? AND segment = ? AND seq > ? AND seq <= ?`
)

// ErrFenced: the segment's epoch is not the caller's (another owner took
// the shard), or the segment was sealed. A commit refused this way can
// never apply later: its condition is false for good.
var ErrFenced = errors.New("shard log fenced by a newer owner")

// Statics are a segment's static columns.
type Statics struct {
	Exists  bool // the segment was opened
	Epoch   int64
	LastSeq int64
	Filled  int64
	Floor   time.Time
}

// Row is one commit read from a log.
type Row struct {
	Seq    int64
	Time   time.Time
	Record []byte
}

// Log is the shard_log table of one keyspace.
type Log struct {
	session *gocql.Session
	serial  gocql.Consistency
	// Fault, if set, is given the driver's answer (nil on success) to each
	// commit, after its batch ran ("commit"), to each settle's read
	// ("settle") and to each segment's opening ("opened"; and "open", with
	// nil, before it runs, which an error then stops), and what it returns
	// is taken as that answer: tests make a coordinator error or a lost
	// answer out of an applied write, or an owner that dies before it.
	Fault func(op string, shard int, err error) error
}

// fault passes err through Fault.
func (l *Log) fault(op string, shard int, err error) error {
	if l.Fault == nil {
		return err
	}
	return l.Fault(op, shard, err)
}

// New returns the log over session; serial is the serial consistency of
// its conditional writes and settling reads.
func New(session *gocql.Session, serial gocql.Consistency) *Log {
	return &Log{session: session, serial: serial}
}

// Statics reads a segment's statics; serial makes it a SERIAL read, which
// completes any Paxos round in progress on the segment first.
func (l *Log) Statics(ctx context.Context, shard int, segment int64, serial bool) (Statics, error) {
	q := l.session.Query(cqlStatics, shard, segment).WithContext(ctx)
	if serial {
		q = q.Consistency(l.serial)
	} else {
		q = q.Idempotent(true)
	}
	var (
		st             Statics
		epoch, last, f *int64
	)
	err := q.Scan(&epoch, &last, &f, &st.Floor)
	if errors.Is(err, gocql.ErrNotFound) {
		return Statics{}, nil
	}
	if err != nil {
		return Statics{}, cql.ReadErr("read shard log statics", err)
	}
	if epoch == nil {
		return Statics{}, nil
	}
	st.Exists, st.Epoch = true, *epoch
	if last != nil {
		st.LastSeq = *last
	}
	if f != nil {
		st.Filled = *f
	}
	return st, nil
}

// Commit is one commit attempt: row Seq = LastSeq+1 of the segment.
type Commit struct {
	Shard    int
	Segment  int64
	Epoch    int64
	Seq      int64 // the new row; the segment must be at Seq-1
	Filled   int64 // the last seq whose chunks are written
	Floor    time.Time
	Time     time.Time
	CommitID uuid.UUID // tells this attempt's row from any other
	Record   []byte
}

// Outcome of a commit attempt.
type Outcome int

const (
	// Committed: row Seq is this commit.
	Committed Outcome = iota + 1
	// Fenced: the condition failed: another owner holds the segment, or
	// it is sealed, or it is not at Seq-1. Nothing was written, ever.
	Fenced
	// Unknown: no answer; settle with Settle.
	Unknown
)

// Commit sends c as one conditional batch. err is set only with Unknown.
// A batch not applied is settled (Settle) before it is called Fenced.
func (l *Log) Commit(ctx context.Context, c *Commit) (Outcome, error) {
	b := l.session.Batch(gocql.LoggedBatch).WithContext(ctx)
	b.SerialConsistency(l.serial)
	b.Query(cqlCommit, c.Seq, c.Filled, c.Floor, c.Shard, c.Segment, c.Epoch, c.Seq-1)
	b.Query(cqlInsert, c.Shard, c.Segment, c.Seq, c.Time, [16]byte(c.CommitID), c.Record)
	applied, iter, err := b.MapExecCAS(map[string]any{})
	if iter != nil {
		iter.Close()
	}
	err = l.fault("commit", c.Shard, err)

	if err != nil {
		return Unknown, fmt.Errorf("commit shard %d seq %d: %w", c.Shard, c.Seq, err)
	}
	if !applied {
		// Not applied does not prove that nothing of c was written: a
		// quorum may have accepted this proposal before its coordinator
		// stalled, another participant's Paxos round (a new owner fencing
		// the segment) then completed it, and the coordinator's retry of
		// the round found row c.Seq in place and the condition false.
		// Settle tells the two apart by c's commit id.
		return l.Settle(ctx, c)
	}
	return Committed, nil
}

// Settle decides a commit whose outcome was unknown: a SERIAL read of the
// segment completes any Paxos round in progress that a quorum can see.
// Committed when row c.Seq exists with c's commit id; Fenced when c's
// condition can no longer hold — another commit took row c.Seq, or a newer
// owner raised the epoch (epochs only grow) — so nothing of c was or will
// ever be written. Unknown while the segment is still exactly where c
// expects it (c's epoch, last_seq c.Seq-1): a SERIAL read cannot discard a
// request that has not reached Paxos yet (one held by a paused coordinator,
// as in the 3-node test S5, applies when the coordinator resumes), so only
// a newer owner's fence can settle it. An error means the read failed too.
func (l *Log) Settle(ctx context.Context, c *Commit) (Outcome, error) {
	st, err := l.Statics(ctx, c.Shard, c.Segment, true)
	if err = l.fault("settle", c.Shard, err); err != nil {
		return Unknown, err
	}
	if st.LastSeq < c.Seq {
		if st.Exists && st.Epoch == c.Epoch && st.LastSeq == c.Seq-1 {
			return Unknown, fmt.Errorf("settle shard %d seq %d: the log is still at seq %d under epoch %d, where the commit may yet apply",
				c.Shard, c.Seq, st.LastSeq, st.Epoch)
		}
		return Fenced, nil
	}
	var id uuid.UUID
	err = l.session.Query(cqlRow, c.Shard, c.Segment, c.Seq).WithContext(ctx).Consistency(l.serial).Scan((*[16]byte)(&id))
	if errors.Is(err, gocql.ErrNotFound) {
		return Fenced, nil
	}
	if err != nil {
		return Unknown, cql.ReadErr("settle commit", err)
	}
	if id == c.CommitID {
		return Committed, nil
	}
	return Fenced, nil
}

// Open opens a segment under epoch, continuing the log at lastSeq, with
// every record up to filled written to its streams, if no one opened it
// yet. applied is false when it exists (then read it).
func (l *Log) Open(ctx context.Context, shard int, segment, epoch, lastSeq, filled int64, floor time.Time) (applied bool, err error) {
	if err := l.fault("open", shard, nil); err != nil {
		return false, fmt.Errorf("open shard %d segment %d: %w", shard, segment, err)
	}
	applied, err = l.session.Query(cqlOpen, epoch, lastSeq, filled, floor, shard, segment).
		WithContext(ctx).SerialConsistency(l.serial).MapScanCAS(map[string]any{})
	err = l.fault("opened", shard, err)
	if err != nil {
		return false, fmt.Errorf("open shard %d segment %d: %w", shard, segment, err)
	}
	return applied, nil
}

// SetFloor raises a segment's floor — the time no later commit of the
// shard may be before — to floor, if the segment is still at epoch and
// lastSeq: an owner with nothing to commit tells feed readers how far its
// shard is complete (docs/design-write-path.md, "Feeds are the shard
// logs"). applied is false when the condition fails (another owner took
// the segment). On an error the floor may or may not be set: the caller
// commits nothing before floor either way.
func (l *Log) SetFloor(ctx context.Context, shard int, segment, epoch, lastSeq int64, floor time.Time) (applied bool, err error) {
	applied, err = l.session.Query(cqlFloor, floor, shard, segment, epoch, lastSeq).
		WithContext(ctx).SerialConsistency(l.serial).MapScanCAS(map[string]any{})
	if err != nil {
		return false, fmt.Errorf("set floor of shard %d segment %d: %w", shard, segment, err)
	}
	return applied, nil
}

// Fence raises an existing segment's epoch to epoch. applied is false when
// it is at epoch or above already (a newer owner), or absent (Open it).
func (l *Log) Fence(ctx context.Context, shard int, segment, epoch int64) (applied bool, err error) {
	applied, err = l.session.Query(cqlFence, epoch, shard, segment, epoch).
		WithContext(ctx).SerialConsistency(l.serial).MapScanCAS(map[string]any{})
	if err != nil {
		return false, fmt.Errorf("fence shard %d segment %d: %w", shard, segment, err)
	}
	return applied, nil
}

// Rows calls fn for the rows after seq `after` up to `through` (inclusive)
// of a segment, in order, pageSize rows a page. A page is asked for one
// row more than that: Cassandra ends a page that fills up with a paging
// state, so a range of exactly pageSize rows (a feed read's usual query)
// cost a second round trip that found nothing — half of a catch-up
// read's queries. lastSeq is the segment's last_seq as the last page read
// saw it: a reader has reached the end of the log only when the last row
// it got is that seq (a row committed after the page was read is past
// lastSeq, never skipped). floor is the segment's floor static read with
// it: no commit after lastSeq is before it.
func (l *Log) Rows(ctx context.Context, shard int, segment, after, through int64, pageSize int, fn func(Row) error) (lastSeq int64, floor time.Time, err error) {
	iter := l.session.Query(cqlRows, shard, segment, after, through).WithContext(ctx).
		Idempotent(true).PageSize(pageSize + 1).Iter()
	var (
		r    Row
		last *int64
		f    time.Time
	)
	for iter.Scan(&r.Seq, &r.Time, &r.Record, &last, &f) {
		if last != nil {
			lastSeq, floor = *last, f
		}
		if err := fn(r); err != nil {
			iter.Close()
			return lastSeq, floor, err
		}
		r, f = Row{}, time.Time{}
	}
	if err := iter.Close(); err != nil {
		return 0, time.Time{}, cql.ReadErr("read shard log", err)
	}
	return lastSeq, floor, nil
}

// CommittedRows calls fn for the rows after seq `after` up to `through`
// (inclusive) of a segment, in order, a page at a time, as Rows does, for
// a caller that knows them committed (at or below a last_seq it read):
// it reads no statics, so Cassandra skips the segment's SSTables that
// hold none of these rows — with the statics, each read merged every
// SSTable the partition's commits had touched. The rows' Record is read
// into one buffer, row after row: valid only until fn returns (a catch-up
// read's records were a tenth of the bytes it allocated).
func (l *Log) CommittedRows(ctx context.Context, shard int, segment, after, through int64, pageSize int, fn func(Row) error) error {
	iter := l.session.Query(cqlRowsOnly, shard, segment, after, through).WithContext(ctx).
		Idempotent(true).PageSize(pageSize + 1).Iter()
	var (
		r   Row
		rec reusedBlob
	)
	for iter.Scan(&r.Seq, &r.Time, &rec) {
		r.Record = rec.b
		if err := fn(r); err != nil {
			iter.Close()
			return err
		}
		r = Row{}
	}
	if err := iter.Close(); err != nil {
		return cql.ReadErr("read shard log", err)
	}
	return nil
}

// Segment returns the segment holding seq, for segments of rows rows.
func Segment(seq, rows int64) int64 {
	if seq < 1 {
		return 0
	}
	return (seq - 1) / rows
}

// reusedBlob scans a blob column into the same buffer every row.
type reusedBlob struct{ b []byte }

// UnmarshalCQL implements gocql.Unmarshaler: data is the driver's, valid
// only during the call.
func (r *reusedBlob) UnmarshalCQL(_ gocql.TypeInfo, data []byte) error {
	r.b = append(r.b[:0], data...)
	return nil
}
