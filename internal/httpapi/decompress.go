package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/labstack/echo/v5"
)

// errBodyTooLarge: the request body, after decompression, exceeds the
// route's limit. It maps to 413 payload_too_large.
var errBodyTooLarge = errors.New("request body too large")

// maxZstdWindow bounds the history a zstd request body may ask the decoder
// to keep (8 MiB, the default window of common encoders).
const maxZstdWindow = 8 << 20

// encodingError: a compressed request body is corrupt. It maps to 400
// invalid_encoding.
type encodingError struct{ err error }

func (e *encodingError) Error() string { return "corrupt compressed request body: " + e.err.Error() }
func (e *encodingError) Unwrap() error { return e.err }

// limitedReader reads at most n bytes from r and fails with
// errBodyTooLarge, not io.EOF, when r holds more. When r is a decompressor
// (decoded), its own errors are classified: size limits become
// errBodyTooLarge, format errors *encodingError; errors of the transport
// beneath pass through unchanged.
type limitedReader struct {
	r         io.Reader
	remaining int64
	decoded   bool
	err       error
}

func newLimitedReader(r io.Reader, n int64, decoded bool) *limitedReader {
	return &limitedReader{r: r, remaining: n, decoded: decoded}
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Ask for one byte past the limit so an exact-size body still ends in EOF.
	if int64(len(p)) > l.remaining+1 {
		p = p[:l.remaining+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.remaining {
		n = int(l.remaining)
		l.remaining = 0
		l.err = errBodyTooLarge
		return n, l.err
	}
	l.remaining -= int64(n)
	if err != nil && err != io.EOF {
		if l.decoded {
			err = classifyDecodeError(err)
		} else {
			err = &transportError{err: err}
		}
		l.err = err
	}
	return n, err
}

// transportError: reading the raw request body failed (client gone, read
// deadline). Nothing to tell the client; logged at debug level.
type transportError struct{ err error }

func (e *transportError) Error() string { return "read request body: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// classifyDecodeError sorts an error returned by a decompressor.
func classifyDecodeError(err error) error {
	var mbe *http.MaxBytesError
	var te *transportError
	switch {
	case errors.Is(err, errBodyTooLarge), errors.As(err, &mbe), errors.As(err, &te):
		return err
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded),
		errors.Is(err, zstd.ErrFrameSizeExceeded):
		return errBodyTooLarge
	}
	return &encodingError{err: err}
}

// decodedBody is a request body decoded per Content-Encoding.
type decodedBody struct {
	io.Reader
	closers []func()
}

func (b *decodedBody) Close() error {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
	return nil
}

// openBody decodes raw per the Content-Encoding value encoding (identity,
// gzip or zstd) and limits the result to limit bytes. The compressed bytes
// are limited to limit too, so neither side can exceed it. Unknown or
// stacked encodings are 415.
func openBody(raw io.ReadCloser, encoding string, limit int64) (io.ReadCloser, error) {
	body := &decodedBody{closers: []func(){func() { raw.Close() }}}
	rawLimited := newLimitedReader(raw, limit, false)
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		body.Reader = rawLimited
		return body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(rawLimited)
		if err != nil {
			body.Close()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, classifyDecodeError(err)
		}
		body.closers = append(body.closers, func() { zr.Close() })
		body.Reader = newLimitedReader(zr, limit, true)
		return body, nil
	case "zstd":
		mem := uint64(limit)
		if mem < maxZstdWindow {
			mem = maxZstdWindow
		}
		zr, err := zstd.NewReader(rawLimited,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecoderMaxMemory(mem))
		if err != nil {
			body.Close()
			return nil, &encodingError{err: err}
		}
		body.closers = append(body.closers, zr.Close)
		body.Reader = newLimitedReader(zr, limit, true)
		return body, nil
	}
	body.Close()
	return nil, newProblem(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
		"Content-Encoding must be identity, gzip or zstd")
}

// limitBody is route middleware that replaces the request body with its
// decoded, size-limited form: limit applies after decompression.
func limitBody(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			r := c.Request()
			body, err := openBody(r.Body, r.Header.Get(echo.HeaderContentEncoding), limit)
			if err != nil {
				return err
			}
			defer body.Close()
			r.Body = body
			r.Header.Del(echo.HeaderContentEncoding)
			return next(c)
		}
	}
}
