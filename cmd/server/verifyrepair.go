package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/repair"
	"github.com/eventlog/eventlog/internal/cassandra/verify"
)

// repairFailed is the outcome printed for a row whose repair Cassandra
// failed (a read or the write): the row may or may not be written.
const repairFailed = "failed"

// repairRows writes each corrupt stream row of rows (kind chunk or run)
// again from the shard log (repair.Repairer.StreamRow), one after another,
// its reads spaced by limit (verify's --rate; nil: none), and prints each
// finding with what became of it. It returns how many it repaired, and
// whether any repair failed.
func repairRows(ctx context.Context, session *gocql.Session, limit *verify.Limiter, rows []verify.Finding, format string, stdout io.Writer, logger *slog.Logger) (repaired int64, failed bool) {
	if len(rows) == 0 {
		return 0, false
	}
	enc := json.NewEncoder(stdout)
	r, err := repair.New(ctx, session, limit) // a nil *verify.Limiter waits for nothing
	for _, f := range rows {
		res := repair.Result{}
		if err == nil {
			var rerr error
			res, rerr = r.StreamRow(ctx, f.Stream, f.Bucket, f.First, f.Last)
			if rerr != nil {
				res = repair.Result{Outcome: repairFailed, Reason: rerr.Error()}
			}
		} else {
			res = repair.Result{Outcome: repairFailed, Reason: err.Error()}
		}
		switch res.Outcome {
		case repair.Repaired:
			repaired++
		case repairFailed:
			failed = true
			logger.Error("repair failed", "stream", string(f.Stream), "bucket", f.Bucket, "last_version", f.Last, "error", res.Reason)
		}
		if format == "json" {
			_ = enc.Encode(repairJSON(f, res))
			continue
		}
		fmt.Fprintln(stdout, repairText(f, res))
	}
	return repaired, failed
}

// repairText is a stream row's finding as findingText prints it, then
// what its repair did, and why when it did not repair it.
func repairText(f verify.Finding, res repair.Result) string {
	s := findingText(f) + "; repair=" + string(res.Outcome)
	if res.Reason != "" {
		s += ": " + res.Reason
	}
	return s
}

// repairJSON is a stream row's finding as findingJSON gives it, with
// repair (repaired, unrepairable, skipped or failed) and repair_reason.
func repairJSON(f verify.Finding, res repair.Result) any {
	return struct {
		streamRowJSON
		Repair       string `json:"repair"`
		RepairReason string `json:"repair_reason,omitempty"`
	}{streamRowOf(f.CorruptError), string(res.Outcome), res.Reason}
}
