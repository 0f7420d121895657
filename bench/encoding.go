package main

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// do sends an HTTP read of the replay scenario, asking for
// --accept-encoding. The harness's transport never asks by itself
// (DisableCompression), so what is measured is what the flag says.
func (rr *replayRun) do(req *http.Request) (*http.Response, error) {
	if enc := rr.e.cfg.AcceptEncoding; enc != "" {
		req.Header.Set("Accept-Encoding", enc)
	}
	return rr.client.Do(req)
}

// decoded returns resp's body with its Content-Encoding undone, counting
// the bytes received before decoding in rr.wire. The decoder is closed
// when the body ends (zstd decoders hold goroutines until closed).
func (rr *replayRun) decoded(resp *http.Response) (io.Reader, error) {
	wire := &countingReader{r: resp.Body, n: &rr.wire}
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "":
		return wire, nil
	case "gzip":
		return gzip.NewReader(wire)
	case "zstd":
		zr, err := zstd.NewReader(wire, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return &closingReader{r: zr, close: zr.Close}, nil
	default:
		return nil, fmt.Errorf("unexpected Content-Encoding %q", enc)
	}
}

// countingReader adds the bytes read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// closingReader calls close once r has returned an error (io.EOF too),
// and returns that error from then on.
type closingReader struct {
	r     io.Reader
	close func()
	err   error
}

func (c *closingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if err != nil {
		c.err = err
		c.close()
	}
	return n, err
}
