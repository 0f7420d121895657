package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/eventlog/eventlog/internal/cassandra/verify"
	"github.com/eventlog/eventlog/internal/log"
)

// Exit codes of server verify besides 0 (everything read is intact, or
// with --repair every corrupt row found was repaired), 1 (could not read
// everything, or a repair failed: what was found so far is printed) and 2
// (bad flags).
const exitCorrupt = 3 // read everything, and found corrupt rows (with --repair: some not repaired)

// runVerify runs `server verify`: it reads and checks every shard log
// record (and, with --streams, every stream row; with --snapshots, every
// snapshot) of the keyspace, with
// the same flags and environment as serve, and prints each corrupt row's
// key on stdout, in text or as JSON lines. It never writes, but with
// --repair (and --streams): then each corrupt chunk or run row is written
// again from the shard log once the scan is done (repairRows), and its
// line says what became of it.
func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	m := NewMain()
	m.Stderr = stderr
	va, err := parseVerify(m, args, getenv, stderr)
	if err == errHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 2
	}
	vo, format, fix := va.opts, va.format, va.repair
	// One limiter: --rate bounds the scan's rows and the repair's reads
	// together.
	vo.Limiter = verify.NewLimiter(vo.Rate)
	session, o, ok := m.connectTool(ctx)
	if !ok {
		return 1
	}
	defer session.Close()
	enc := json.NewEncoder(stdout)
	var rows []verify.Finding // the stream rows to repair, with --repair
	rep, err := verify.Run(ctx, session, vo, func(f verify.Finding) {
		if fix && (f.Kind == log.CorruptChunk || f.Kind == log.CorruptRun) {
			rows = append(rows, f)
			return
		}
		if format == "json" {
			_ = enc.Encode(findingJSON(f))
			return
		}
		fmt.Fprintln(stdout, findingText(f))
	})
	attrs := []any{"keyspace", o.Keyspace, "shards", rep.Shards, "segments", rep.Segments, "log_records", rep.LogRecords,
		"stream_rows", rep.StreamRows, "streams_read", vo.Streams, "snapshots", rep.Snapshots, "snapshots_skipped", rep.SnapshotsSkipped,
		"snapshots_read", vo.Snapshots, "corrupt", rep.Corrupt}
	// Repaired rows are not left corrupt; a repair that failed (Cassandra)
	// is a verify that did not finish.
	var repaired int64
	if fix {
		var failed bool
		repaired, failed = repairRows(ctx, session, vo.Limiter, rows, format, stdout, m.logger())
		attrs = append(attrs, "repaired", repaired)
		if failed && err == nil {
			err = errors.New("a repair failed")
		}
	}
	switch {
	case err != nil:
		m.logger().Error("verify did not finish: the rows not read are not verified", append(attrs, "error", err)...)
		return 1
	case rep.Corrupt > repaired:
		m.logger().Error("verify found corrupt rows", attrs...)
		return exitCorrupt
	}
	if repaired > 0 {
		m.logger().Info("verify repaired every corrupt row it found", attrs...)
		return 0
	}
	m.logger().Info("verify found no corrupt row", attrs...)
	return 0
}

// verifyArgs are server verify's own flags.
type verifyArgs struct {
	opts   verify.Options
	format string // text or json
	repair bool
}

// parseVerify parses server verify's command line into m.Config and its
// own flags, each of which falls back to EVENTLOG_VERIFY_<FLAG>, as
// serve's flags fall back to theirs.
func parseVerify(m *Main, args []string, getenv func(string) string, stderr io.Writer) (verifyArgs, error) {
	var va verifyArgs
	vo := &va.opts
	extra := func(fs *flag.FlagSet) {
		fs.BoolVar(&vo.Streams, "streams", false, "verify: also every stream row (stream_events, read by token range), not only the shard logs")
		fs.BoolVar(&vo.Snapshots, "snapshots", false, "verify: also every snapshot (those over --max-snapshot-bytes are skipped, as the server skips them)")
		fs.IntVar(&vo.Concurrency, "concurrency", 4, "verify: shards or token ranges read at once")
		fs.Float64Var(&vo.Rate, "rate", 0, "verify: rows read a second at most, over all of them, --repair's reads included (0: no limit)")
		fs.StringVar(&va.format, "format", "text", "verify: how corrupt rows are printed: text or json (a JSON object a line)")
		fs.BoolVar(&va.repair, "repair", false, "verify: write each corrupt chunk or run row found again from the shard log records it was filled from\n"+
			"(needs --streams; each such row's line says repaired, unrepairable, skipped or failed, and why)")
	}
	_, err := m.Config.parse("server verify", args, getenv, stderr, extra, "verify-", 0)
	if err != nil {
		return va, err
	}
	switch {
	case va.format != "text" && va.format != "json":
		return va, fmt.Errorf("--format must be text or json, not %q", va.format)
	case va.repair && !vo.Streams:
		return va, fmt.Errorf("--repair needs --streams: it repairs the stream rows that finds")
	case vo.Concurrency < 1:
		return va, fmt.Errorf("--concurrency must be at least 1")
	}
	vo.MaxSnapshotBytes = m.Config.MaxSnapshotBytes
	vo.EnsureDefaults()
	return va, vo.Validate()
}

// findingText is a finding as one line of text: its kind, its key, and
// what is wrong.
func findingText(f verify.Finding) string {
	e := f.CorruptError
	if e.Kind == log.CorruptSnapshot {
		return fmt.Sprintf("%s stream=%s version=%d: %v", e.Kind, e.Stream, e.Last, e.Err)
	}
	if e.Kind == log.CorruptLogRecord {
		state := "not filled"
		if f.Filled {
			state = "filled"
		}
		return fmt.Sprintf("%s shard=%d segment=%d seq=%d %s: %v", e.Kind, e.Shard, e.Segment, e.Seq, state, e.Err)
	}
	return fmt.Sprintf("%s stream=%s bucket=%d first_version=%d last_version=%d: %v", e.Kind, e.Stream, e.Bucket, e.First, e.Last, e.Err)
}

// findingJSON is a finding as a JSON object: its kind, its key, and what
// is wrong (error).
func findingJSON(f verify.Finding) any {
	e := f.CorruptError
	if e.Kind == log.CorruptSnapshot {
		return struct {
			Kind    string `json:"kind"`
			Stream  string `json:"stream"`
			Version int64  `json:"version"`
			Error   string `json:"error"`
		}{e.Kind, string(e.Stream), e.Last, e.Err.Error()}
	}
	if e.Kind == log.CorruptLogRecord {
		return struct {
			Kind    string `json:"kind"`
			Shard   int    `json:"shard"`
			Segment int64  `json:"segment"`
			Seq     int64  `json:"seq"`
			Filled  bool   `json:"filled"`
			Error   string `json:"error"`
		}{e.Kind, e.Shard, e.Segment, e.Seq, f.Filled, e.Err.Error()}
	}
	return streamRowOf(e)
}

// streamRowJSON is a stream row's finding (a chunk, a run) as JSON.
type streamRowJSON struct {
	Kind         string `json:"kind"`
	Stream       string `json:"stream"`
	Bucket       int64  `json:"bucket"`
	FirstVersion int64  `json:"first_version"`
	LastVersion  int64  `json:"last_version"`
	Error        string `json:"error"`
}

func streamRowOf(e *log.CorruptError) streamRowJSON {
	return streamRowJSON{e.Kind, string(e.Stream), e.Bucket, e.First, e.Last, e.Err.Error()}
}
