package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/google/uuid"
)

// BenchmarkEncodeEvent encodes a replay's event as its NDJSON line: the
// server's per-event share of a replay, beside decoding and writing.
func BenchmarkEncodeEvent(b *testing.B) {
	e := &log.RecordedEvent{ID: uuid.Must(uuid.NewV7()), Type: "OrderLineAdded", Version: 123456,
		Time: time.Date(2026, 12, 6, 20, 1, 2, 345_000_000, time.UTC),
		Data: json.RawMessage(`{"order_id":"ord-7f3a9c","sku":"SKU-48213","quantity":3,"unit_price":{"amount":1999,"currency":"EUR"},"added_by":"user-1842","note":"gift wrap please","channel":"web"}`)}
	var enc encoder
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(enc.event(nil, e))))
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.event(buf[:0], e)
	}
}

func BenchmarkAppendUUID(b *testing.B) {
	u := uuid.Must(uuid.NewV7())
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = appendUUID(buf[:0], u)
	}
}
