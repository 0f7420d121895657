package httpapi

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func readBody(raw []byte, encoding string, limit int64) ([]byte, error) {
	body, err := openBody(io.NopCloser(bytes.NewReader(raw)), encoding, limit)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

func TestOpenBody(t *testing.T) {
	payload := []byte(strings.Repeat("event ", 100)) // 600 bytes
	for _, tc := range []struct {
		encoding string
		raw      []byte
	}{
		{"", payload},
		{"identity", payload},
		{"gzip", gzipBytes(t, payload)},
		{"GZIP", gzipBytes(t, payload)},
		{"zstd", zstdBytes(t, payload)},
	} {
		t.Run("OK_"+tc.encoding, func(t *testing.T) {
			got, err := readBody(tc.raw, tc.encoding, int64(len(payload)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("got %d bytes, want the %d-byte payload", len(got), len(payload))
			}
		})
		t.Run("ErrTooLarge_"+tc.encoding, func(t *testing.T) {
			got, err := readBody(tc.raw, tc.encoding, int64(len(payload))-1)
			if !errors.Is(err, errBodyTooLarge) {
				t.Fatalf("err = %v, want errBodyTooLarge", err)
			}
			if len(got) > len(payload)-1 {
				t.Fatalf("read %d bytes past the limit", len(got))
			}
		})
	}

	t.Run("ErrGzipBomb", func(t *testing.T) {
		// 64 MiB of zeros compress to ~64 KiB; the limit stops reading at 1 MiB.
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zeros := make([]byte, 1<<20)
		for range 64 {
			zw.Write(zeros)
		}
		zw.Close()
		got, err := readBody(buf.Bytes(), "gzip", 1<<20)
		if !errors.Is(err, errBodyTooLarge) {
			t.Fatalf("err = %v, want errBodyTooLarge", err)
		}
		if len(got) != 1<<20 {
			t.Fatalf("read %d bytes, want exactly the 1 MiB limit", len(got))
		}
	})
	t.Run("ErrZstdBomb", func(t *testing.T) {
		raw := zstdBytes(t, make([]byte, 64<<20))
		_, err := readBody(raw, "zstd", 1<<20)
		if !errors.Is(err, errBodyTooLarge) {
			t.Fatalf("err = %v, want errBodyTooLarge", err)
		}
	})
	t.Run("ErrCompressedBytesOverLimit", func(t *testing.T) {
		// The raw (compressed) stream is bounded too.
		_, err := readBody(bytes.Repeat([]byte{0}, 2000), "", 1000)
		if !errors.Is(err, errBodyTooLarge) {
			t.Fatalf("err = %v, want errBodyTooLarge", err)
		}
	})
	t.Run("ErrCorruptGzip", func(t *testing.T) {
		raw := gzipBytes(t, payload)
		raw[len(raw)-5] ^= 0xff // break the CRC
		_, err := readBody(raw, "gzip", 1<<20)
		if got, want := codeOf(err), CodeInvalidEncoding; got != want {
			t.Fatalf("code = %q, want %q (err %v)", got, want, err)
		}
	})
	t.Run("ErrNotGzip", func(t *testing.T) {
		_, err := readBody([]byte(`{"events":[]}`), "gzip", 1<<20)
		if got, want := codeOf(err), CodeInvalidEncoding; got != want {
			t.Fatalf("code = %q, want %q (err %v)", got, want, err)
		}
	})
	t.Run("ErrNotZstd", func(t *testing.T) {
		_, err := readBody([]byte(`{"events":[]}`), "zstd", 1<<20)
		if got, want := codeOf(err), CodeInvalidEncoding; got != want {
			t.Fatalf("code = %q, want %q (err %v)", got, want, err)
		}
	})
	t.Run("ErrUnknownEncoding", func(t *testing.T) {
		for _, enc := range []string{"br", "deflate", "gzip, zstd"} {
			_, err := readBody(payload, enc, 1<<20)
			if got, want := codeOf(err), CodeUnsupportedMediaType; got != want {
				t.Fatalf("%s: code = %q, want %q", enc, got, want)
			}
		}
	})
}

func TestLimitedReaderExactSize(t *testing.T) {
	r := newLimitedReader(strings.NewReader("12345"), 5, false)
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("err = %v, want nil at exactly the limit", err)
	}
	if string(got) != "12345" {
		t.Fatalf("got %q", got)
	}
}

// FuzzDecompress: any body under any supported encoding reads to at most
// limit bytes or fails with a classified error; never a panic.
func FuzzDecompress(f *testing.F) {
	f.Add([]byte("plain"), uint8(0))
	f.Add(gzipBytes(f, []byte(strings.Repeat("a", 5000))), uint8(1))
	f.Add(zstdBytes(f, []byte(strings.Repeat("b", 5000))), uint8(2))
	f.Add(zstdBytes(f, make([]byte, 1<<20)), uint8(2))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff}, uint8(2))
	const limit = 4096
	f.Fuzz(func(t *testing.T, raw []byte, enc uint8) {
		encoding := []string{"", "gzip", "zstd"}[int(enc)%3]
		got, err := readBody(raw, encoding, limit)
		if len(got) > limit {
			t.Fatalf("read %d bytes, limit %d", len(got), limit)
		}
		if err == nil {
			return
		}
		var ee *encodingError
		if !errors.Is(err, errBodyTooLarge) && !errors.As(err, &ee) {
			t.Fatalf("unclassified error %T: %v", err, err)
		}
		if p := ProblemFor(err); p.Status != 400 && p.Status != 413 {
			t.Fatalf("maps to %d, want 400 or 413", p.Status)
		}
	})
}
