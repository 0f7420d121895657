package snapshot

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The generator below builds the JSON of an order aggregate the way an
// application would snapshot it: compact encoding/json output, time-ordered
// UUIDv7 ids (as our events use), a product catalogue with skewed popularity,
// prices, discounts and a status history. It is seeded, so every run and
// machine sees the same bytes; the compression-ratio target is measured on it.

type money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

type address struct {
	Name       string `json:"name"`
	Street     string `json:"street"`
	City       string `json:"city"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

type discount struct {
	Code    string `json:"code"`
	Percent int    `json:"percent"`
	Amount  money  `json:"amount"`
}

type lineItem struct {
	LineID     string            `json:"lineId"`
	SKU        string            `json:"sku"`
	Name       string            `json:"name"`
	Category   string            `json:"category"`
	Quantity   int               `json:"quantity"`
	UnitPrice  money             `json:"unitPrice"`
	LineTotal  money             `json:"lineTotal"`
	Discount   *discount         `json:"discount,omitempty"`
	Status     string            `json:"status"`
	Attributes map[string]string `json:"attributes,omitempty"`
	AddedAt    time.Time         `json:"addedAt"`
	UpdatedAt  time.Time         `json:"updatedAt"`
}

type statusChange struct {
	EventID string    `json:"eventId"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
}

type orderState struct {
	OrderID    string         `json:"orderId"`
	CustomerID string         `json:"customerId"`
	Version    int64          `json:"version"`
	Status     string         `json:"status"`
	Currency   string         `json:"currency"`
	Shipping   address        `json:"shippingAddress"`
	Billing    address        `json:"billingAddress"`
	Lines      []lineItem     `json:"lines"`
	History    []statusChange `json:"history"`
	Subtotal   money          `json:"subtotal"`
	Discounts  money          `json:"discounts"`
	Tax        money          `json:"tax"`
	Total      money          `json:"total"`
	CreatedAt  time.Time      `json:"createdAt"`
	UpdatedAt  time.Time      `json:"updatedAt"`
}

type product struct {
	sku, name, category string
	cents               int64
	attrs               map[string]string
}

var (
	adjectives = []string{"Classic", "Organic", "Premium", "Compact", "Wireless", "Vintage", "Ergonomic", "Stainless", "Recycled", "Deluxe", "Portable", "Handmade"}
	nouns      = []string{"Coffee Beans", "Desk Lamp", "Backpack", "Water Bottle", "Notebook", "Headphones", "Yoga Mat", "Chef Knife", "Tea Set", "Sneakers", "Rain Jacket", "Phone Case", "Blender", "Candle"}
	categories = []string{"grocery", "home", "outdoor", "electronics", "stationery", "kitchen", "apparel", "sports", "beauty", "toys"}
	colors     = []string{"black", "white", "navy", "olive", "red", "sand"}
	sizes      = []string{"XS", "S", "M", "L", "XL"}
	statuses   = []string{"added", "reserved", "picked", "shipped", "delivered", "returned"}
	orderFlow  = []string{"draft", "placed", "paid", "fulfilling", "shipped", "delivered"}
	actors     = []string{"customer", "system", "warehouse", "support"}
	codes      = []string{"SPRING10", "WELCOME5", "VIP15", "BUNDLE20"}
)

// uuidV7 formats a UUIDv7 for ms with random bits from r.
func uuidV7(r *rand.Rand, ms int64) string {
	var b [16]byte
	for i := 0; i < 6; i++ {
		b[i] = byte(ms >> (40 - 8*i))
	}
	binary.LittleEndian.PutUint64(b[6:14], r.Uint64())
	binary.LittleEndian.PutUint16(b[14:], uint16(r.Uint64()))
	b[6] = 0x70 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func cents(c int64, cur string) money {
	return money{Amount: fmt.Sprintf("%d.%02d", c/100, c%100), Currency: cur}
}

// aggregateJSON returns the JSON of a deterministic order aggregate with the
// given number of line items (~330 bytes each).
func aggregateJSON(tb testing.TB, lines int) []byte {
	tb.Helper()
	r := rand.New(rand.NewPCG(42, uint64(lines)))
	catalogue := make([]product, 400)
	for i := range catalogue {
		p := product{
			sku:      fmt.Sprintf("SKU-%05d", 10000+r.IntN(90000)),
			name:     adjectives[r.IntN(len(adjectives))] + " " + nouns[r.IntN(len(nouns))],
			category: categories[r.IntN(len(categories))],
			cents:    199 + r.Int64N(25000),
		}
		if r.IntN(2) == 0 {
			p.attrs = map[string]string{"color": colors[r.IntN(len(colors))], "size": sizes[r.IntN(len(sizes))]}
		}
		catalogue[i] = p
	}
	popularity := rand.NewZipf(r, 1.2, 1, uint64(len(catalogue)-1))

	const cur = "EUR"
	start := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	now := start
	ship := address{Name: "Ada Lovelace", Street: "12 Analytical Engine Way", City: "London", PostalCode: "NW1 2DB", Country: "GB"}
	s := orderState{
		OrderID:    uuidV7(r, start.UnixMilli()),
		CustomerID: uuidV7(r, start.Add(-400*24*time.Hour).UnixMilli()),
		Currency:   cur,
		Shipping:   ship,
		Billing:    ship,
		CreatedAt:  start,
	}
	var subtotal, discounts int64
	for range lines {
		now = now.Add(time.Duration(1+r.IntN(90)) * time.Second)
		p := catalogue[popularity.Uint64()]
		qty := 1 + r.IntN(4)
		total := p.cents * int64(qty)
		li := lineItem{
			LineID:     uuidV7(r, now.UnixMilli()),
			SKU:        p.sku,
			Name:       p.name,
			Category:   p.category,
			Quantity:   qty,
			UnitPrice:  cents(p.cents, cur),
			LineTotal:  cents(total, cur),
			Status:     statuses[r.IntN(len(statuses))],
			Attributes: p.attrs,
			AddedAt:    now,
			UpdatedAt:  now.Add(time.Duration(r.IntN(3600)) * time.Second),
		}
		if r.IntN(5) == 0 {
			pct := []int{5, 10, 15, 20}[r.IntN(4)]
			d := total * int64(pct) / 100
			li.Discount = &discount{Code: codes[r.IntN(len(codes))], Percent: pct, Amount: cents(d, cur)}
			discounts += d
		}
		subtotal += total
		s.Lines = append(s.Lines, li)
		s.Version++
	}
	for i := 1; i < len(orderFlow); i++ {
		now = now.Add(time.Duration(r.IntN(7200)) * time.Second)
		s.History = append(s.History, statusChange{
			EventID: uuidV7(r, now.UnixMilli()),
			From:    orderFlow[i-1], To: orderFlow[i],
			By: actors[r.IntN(len(actors))], At: now,
		})
		s.Version++
	}
	s.Status = orderFlow[len(orderFlow)-1]
	tax := (subtotal - discounts) * 20 / 100
	s.Subtotal, s.Discounts = cents(subtotal, cur), cents(discounts, cur)
	s.Tax, s.Total = cents(tax, cur), cents(subtotal-discounts+tax, cur)
	s.UpdatedAt = now
	b, err := json.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Line counts for ~100 KB and ~5 MB states.
const (
	smallLines = 300
	largeLines = 15000
)

func TestAggregateJSONSize(t *testing.T) {
	for _, lines := range []int{smallLines, largeLines} {
		b := aggregateJSON(t, lines)
		t.Logf("%d lines: %d bytes", lines, len(b))
		if !json.Valid(b) {
			t.Fatal("invalid JSON")
		}
	}
}
