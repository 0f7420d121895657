package httpapi

import (
	"bytes"
	"testing"
)

// The body of a typical 1-event append with a client id (as bench ingest
// sends): decoding it is on every append's path.
var benchAppendBody = []byte(`{"expected_version":"any","events":[{"id":"0191e1a4-7c3b-7d2e-9f10-2b3c4d5e6f70","type":"ItemAdded","data":{"order_id":"ord-18273","sku":"grinder-pro","name":"lorem ipsum dolor","quantity":2,"unit_price":129.5,"currency":"EUR","added_at":"2026-12-04T05:00:00Z","customer":{"id":"cus-99","city":"Lisbon"}},"metadata":{"correlation_id":"c-1","source":"bench"}}]}`)

func BenchmarkDecodeAppend(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchAppendBody)))
	for b.Loop() {
		if _, err := decodeAppend(bytes.NewReader(benchAppendBody), decodeOptions{MaxEvents: 1000}); err != nil {
			b.Fatal(err)
		}
	}
}
