package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// TestDecoded: the replay reads undo the server's Content-Encoding and
// count the bytes as received.
func TestDecoded(t *testing.T) {
	plain := []byte(strings.Repeat(`{"id":"x","type":"t","version":1,"data":{"a":"bbbbbbbb"}}`+"\n", 200))
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	for _, tc := range []struct {
		enc  string
		wire []byte
	}{{"", plain}, {"gzip", gz.Bytes()}, {"zstd", zs.Bytes()}} {
		t.Run("Encoding="+tc.enc, func(t *testing.T) {
			rr := &replayRun{}
			resp := &http.Response{Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(tc.wire))}
			if tc.enc != "" {
				resp.Header.Set("Content-Encoding", tc.enc)
			}
			body, err := rr.decoded(resp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(body)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("decoded %d bytes (%v), want the %d plain ones", len(got), err, len(plain))
			}
			if n := rr.wire.Load(); n != int64(len(tc.wire)) {
				t.Fatalf("counted %d bytes on the wire, want %d", n, len(tc.wire))
			}
		})
	}
	t.Run("UnknownEncoding", func(t *testing.T) {
		resp := &http.Response{Header: http.Header{"Content-Encoding": {"br"}}, Body: io.NopCloser(bytes.NewReader(nil))}
		if _, err := (&replayRun{}).decoded(resp); err == nil {
			t.Fatal("decoded a body in an unknown encoding")
		}
	})
}
