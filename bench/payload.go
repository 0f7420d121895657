package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// eventSizes are the payload sizes the harness generates.
var eventSizes = []int{200, 1024, 4096}

func validEventSize(n int) bool {
	for _, s := range eventSizes {
		if s == n {
			return true
		}
	}
	return false
}

// payload is one generated event body: compact JSON, as the server stores
// it, so the baseline binds the very bytes the server would write.
type payload struct {
	Type     string
	Data     []byte
	Metadata []byte
}

// Size is what the event costs in JSON: data plus metadata.
func (p *payload) Size() int { return len(p.Data) + len(p.Metadata) }

// payloadPoolSize payloads are generated once per run and reused in turn:
// enough variety that no two neighbouring events are the same, little
// enough that generating them costs nothing measurable.
const payloadPoolSize = 512

// eventTypes are the domain events the generator imitates.
var eventTypes = []string{
	"OrderPlaced", "ItemAdded", "ItemRemoved", "ShippingAddressChanged",
	"PaymentAuthorized", "PaymentCaptured", "OrderShipped", "CouponApplied",
}

var (
	words    = strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat")
	products = []string{"coffee-beans-1kg", "espresso-cups-set", "grinder-pro", "filter-papers-100", "kettle-gooseneck", "scale-0.1g", "milk-frother", "tamper-58mm"}
	cities   = []string{"Lisbon", "Utrecht", "Kraków", "Valencia", "Göteborg", "Leeds", "Lyon", "Graz"}
)

type address struct {
	Street  string `json:"street"`
	City    string `json:"city"`
	Postal  string `json:"postal_code"`
	Country string `json:"country"`
}

type item struct {
	SKU       string  `json:"sku"`
	Name      string  `json:"name"`
	Quantity  int     `json:"quantity"`
	UnitPrice float64 `json:"unit_price"`
}

type eventData struct {
	OrderID    string   `json:"order_id"`
	CustomerID string   `json:"customer_id"`
	At         string   `json:"at"`
	Currency   string   `json:"currency"`
	Total      float64  `json:"total"`
	Address    *address `json:"address,omitempty"`
	Items      []item   `json:"items,omitempty"`
	Note       string   `json:"note,omitempty"`
}

type eventMeta struct {
	CorrelationID string `json:"correlation_id"`
	CausationID   string `json:"causation_id,omitempty"`
	UserID        string `json:"user_id"`
	Source        string `json:"source"`
}

// newPayloads generates n payloads whose data + metadata is size bytes on
// average, each within ±10% of it: realistic nested JSON with strings,
// numbers, objects and arrays (an order aggregate's events).
func newPayloads(size, n int, seed uint64) []payload {
	rng := rand.New(rand.NewPCG(seed, uint64(size)))
	out := make([]payload, n)
	for i := range out {
		target := int(float64(size) * (0.9 + 0.2*rng.Float64()))
		out[i] = genPayload(rng, target)
	}
	return out
}

func genPayload(rng *rand.Rand, target int) payload {
	hexID := func(prefix string) string { return fmt.Sprintf("%s-%08x", prefix, rng.Uint32()) }
	m := eventMeta{CorrelationID: hexID("c"), UserID: hexID("u"), Source: "bench"}
	if target >= 300 { // small events carry less metadata
		m.CausationID = hexID("m")
	}
	meta, _ := json.Marshal(m)
	d := eventData{
		OrderID:    hexID("order"),
		CustomerID: hexID("cust"),
		At:         fmt.Sprintf("2026-%02d-%02dT%02d:%02d:%02dZ", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60)),
		Currency:   "EUR",
		Total:      float64(rng.IntN(100000)) / 100,
	}
	size := func() int {
		b, _ := json.Marshal(d)
		return len(b) + len(meta)
	}
	// Metadata alone can exceed a small target's share; data is then the
	// bare order fields.
	if size() < target-120 {
		d.Address = &address{Street: fmt.Sprintf("%d %s street", 1+rng.IntN(200), words[rng.IntN(len(words))]),
			City: cities[rng.IntN(len(cities))], Postal: fmt.Sprintf("%05d", rng.IntN(100000)), Country: "EU"}
	}
	for size() < target-100 {
		p := rng.IntN(len(products))
		d.Items = append(d.Items, item{SKU: fmt.Sprintf("SKU-%04d", rng.IntN(10000)), Name: products[p],
			Quantity: 1 + rng.IntN(5), UnitPrice: float64(1+rng.IntN(20000)) / 100})
	}
	if gap := target - size() - len(`,"note":""`); gap > 0 {
		var b strings.Builder
		for b.Len() < gap {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		d.Note = b.String()[:gap]
	}
	data, _ := json.Marshal(d)
	return payload{Type: eventTypes[rng.IntN(len(eventTypes))], Data: data, Metadata: meta}
}
