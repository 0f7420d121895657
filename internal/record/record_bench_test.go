package record

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// BenchmarkRecordDecode decodes a log record as a feed read does (into
// Buffers kept from one record to the next, from its compressed bytes
// into a kept buffer): a commit group of 12 1-event appends to 12
// streams, ~200-byte JSON events. FewTypes: 4 event types, as an
// aggregate's; ManyTypes: every event's type new to the decoder (its type
// cache of 16 misses on each). ns/op/12 is an append's.
func BenchmarkRecordDecode(b *testing.B) {
	for _, tc := range []struct {
		name  string
		types int
	}{{"FewTypes", 4}, {"ManyTypes", 1 << 20}} {
		b.Run(tc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(7, 8))
			recs := make([][]byte, 64)
			n := 0
			for i := range recs {
				r := Record{Appends: make([]Append, 12)}
				for j := range r.Appends {
					data := fmt.Sprintf(`{"order_id":"ord-%06x","sku":"SKU-%05d","quantity":%d,"unit_price":{"amount":%d,"currency":"EUR"},"channel":"web"}`,
						rng.IntN(1<<24), rng.IntN(100000), 1+rng.IntN(9), 100+rng.IntN(10000))
					r.Appends[j] = Append{Stream: log.StreamID(fmt.Sprintf("order-%06d", rng.IntN(1000000))), Bucket: 0, FirstVersion: 1 + rng.Int64N(1000), ClientIDs: true,
						Events: []Event{{ID: uuid.Must(uuid.NewV7()), Type: fmt.Sprintf("OrderEvent%d", n%tc.types), Data: []byte(data)}}}
					n++
				}
				recs[i] = AppendRecord(nil, &r)
			}
			var (
				bufs Buffers
				buf  []byte
				i    int
			)
			for b.Loop() {
				_, fresh, err := DecodeRecordInto(recs[i%len(recs)], buf, &bufs)
				if err != nil {
					b.Fatal(err)
				}
				if fresh != nil {
					buf = fresh[:0]
				}
				i++
			}
		})
	}
}
