package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// BulkAppend is one append of a bulk request.
type BulkAppend struct {
	Stream   string
	Expected ExpectedVersion
	Events   []EventData
}

// BulkResult is the outcome of one BulkAppend: Result, or Err (usually a
// *Problem whose Line is the append's 1-based index).
type BulkResult struct {
	Result *AppendResult
	Err    error
}

// ErrBulkNotProcessed is the Err of a bulk append the server did not get
// to because it ended the request at an earlier line for good (too many
// lines, a key revoked meanwhile). Appends cut off by a transient end (the
// server's bulk deadline, answered unavailable) are sent again instead.
var ErrBulkNotProcessed = errors.New("eventlog: bulk append not processed: the server ended the request at an earlier line")

// bulkLine is one result line: an append result or a problem.
type bulkLine struct {
	Problem
	AppendResult
}

// AppendBulk sends many appends in one NDJSON request (POST /v1/events).
// Each is atomic on its own. The results, one per append in the order
// given, hold an AppendResult or the append's error. The server bounds the
// lines of one request (10,000 by default) and the size of each line:
// split larger batches.
//
// Events without an ID get a UUIDv7 first, so retries are safe: a request
// that fails as a whole, or breaks off, is sent again for the appends
// without a result yet, and appends answered with unavailable or
// outcome_unknown are sent again on their own, up to the retry policy's
// attempts. A retried append can therefore land after appends that came
// later in the slice; use expected versions where the order matters. An
// append whose last error is transient but one of whose attempts may have
// been stored has an Err matching ErrOutcomeUnknown.
//
// The error is for the request as a whole: refused (a 4xx), or its last
// attempt failed (retries spent, ctx done); the appends of that attempt
// carry it in Err. Failures of single appends are only in the results.
func (c *Client) AppendBulk(ctx context.Context, appends []BulkAppend) ([]BulkResult, error) {
	b := &bulk{c: c, lines: make([][]byte, len(appends)), results: make([]BulkResult, len(appends)),
		unknown: make([]bool, len(appends)), pending: make([]int, len(appends))}
	for i, a := range appends {
		line, err := encodeAppend(a.Stream, a.Expected, a.Events)
		if err != nil {
			return nil, fmt.Errorf("eventlog: bulk append %d (%s): %w", i+1, a.Stream, err)
		}
		b.lines[i] = line
		b.pending[i] = i
	}
	err := c.retry.do(ctx, func() error { return b.attempt(ctx) })
	if err == nil {
		return b.results, nil
	}
	err = fmt.Errorf("eventlog: bulk append: %w", err)
	if b.whole {
		for _, i := range b.pending {
			b.results[i] = BulkResult{Err: err}
		}
	}
	for i := range b.results {
		if r := &b.results[i]; r.Err != nil && b.unknown[i] && (retryable(r.Err) || r.Err == err) {
			r.Err = mark(r.Err, true)
		}
	}
	if b.whole {
		return b.results, err
	}
	return b.results, nil
}

// bulk is the state of one AppendBulk across attempts.
type bulk struct {
	c       *Client
	lines   [][]byte     // encoded appends, fixed before the first attempt
	results []BulkResult // the latest result of each append
	unknown []bool       // an attempt of the append may have been stored
	pending []int        // indexes of the appends to send (again)
	// whole is set when the last attempt failed as a whole, rather than
	// with retryable results for some appends.
	whole bool
}

// attempt sends the pending appends and records their results. It leaves
// in pending the appends to send again, with the error to retry on.
func (b *bulk) attempt(ctx context.Context) error {
	b.whole = true
	var body bytes.Buffer
	for _, i := range b.pending {
		body.Write(b.lines[i])
		body.WriteByte('\n')
	}
	r := &request{method: http.MethodPost, path: "/v1/events", body: body.Bytes(),
		contentType: mediaNDJSON, accept: mediaNDJSON, write: true}
	res, err := b.c.send(ctx, r)
	if err != nil {
		b.markUnknown(b.pending, err)
		return err
	}
	defer res.Body.Close()

	sent := b.pending
	answered := make([]bool, len(sent))
	var retry []int    // answered with a retryable problem
	var retryErr error // the first of those problems
	var last *Problem  // the last result line's problem, if it was one
	lr := newLineReader(res.Body)
	for {
		line, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			err = b.c.transportErr(ctx, err, true)
			rest := unanswered(sent, answered)
			b.markUnknown(rest, err)
			b.pending = append(retry, rest...)
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var bl bulkLine
		if err := json.Unmarshal(line, &bl); err != nil {
			b.pending = unanswered(sent, answered)
			return fmt.Errorf("decode bulk result: %w", err)
		}
		n := bl.Problem.Line // the server numbers the lines of this request
		if n < 1 || n > len(sent) || answered[n-1] {
			b.pending = unanswered(sent, answered)
			return fmt.Errorf("bulk result for line %d of %d", n, len(sent))
		}
		answered[n-1] = true
		i := sent[n-1]
		last = nil
		if bl.Code == "" {
			ar := bl.AppendResult
			b.results[i] = BulkResult{Result: &ar}
			continue
		}
		p := bl.Problem
		p.Line = i + 1
		last = &p
		b.results[i] = BulkResult{Err: &p} // final unless retried
		if p.Retryable() {
			b.markUnknown([]int{i}, &p)
			retry = append(retry, i)
			if retryErr == nil {
				retryErr = &p
			}
		}
	}
	// A clean end without some results: the server stopped early, at the
	// line whose problem came last. After a retryable one (its deadline
	// passed: "this line and any after it were not processed") the rest
	// are sent again like that line; after any other (past the line limit,
	// a revoked key) they are not processed, for good.
	rest := unanswered(sent, answered)
	for _, i := range rest {
		b.results[i] = BulkResult{Err: ErrBulkNotProcessed}
		if last != nil && last.Retryable() {
			// Final only if the retries run out.
			b.results[i].Err = fmt.Errorf("%w (%w)", ErrBulkNotProcessed, last)
		}
	}
	if last != nil && last.Retryable() {
		retry = append(retry, rest...)
	}
	b.pending, b.whole = retry, false
	return retryErr
}

// markUnknown notes that appends at idx may have been stored if err says
// so.
func (b *bulk) markUnknown(idx []int, err error) {
	if errors.Is(err, ErrOutcomeUnknown) {
		for _, i := range idx {
			b.unknown[i] = true
		}
	}
}

// unanswered lists the sent indexes without a result line.
func unanswered(sent []int, answered []bool) []int {
	var out []int
	for k, i := range sent {
		if !answered[k] {
			out = append(out, i)
		}
	}
	return out
}
