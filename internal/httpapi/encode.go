package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// timeLayout is RFC 3339 in UTC with a fixed six-digit (microsecond)
// fraction, e.g. 2026-11-01T12:00:00.123000Z. Cassandra keeps milliseconds,
// so the last three digits are zero today.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// appendTime appends t quoted, in timeLayout: by hand, since a feed read
// formats a time per event and AppendFormat's layout parsing was 5 % of
// it. Years outside 0..9999 fall back to AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	b = append(b, '"')
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		b = t.AppendFormat(b, timeLayout)
		return append(b, '"')
	}
	h, mi, _ := t.Clock()
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(mo), 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	return appendSeconds(b, t)
}

// appendSeconds appends t's seconds and microseconds, and the closing
// `Z"` of appendTime's layout.
func appendSeconds(b []byte, t time.Time) []byte {
	b = appendDigits(b, t.Second(), 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z', '"')
}

// appendDigits appends v (>= 0) in exactly n decimal digits.
func appendDigits(b []byte, v, n int) []byte {
	var d [8]byte
	for i := n - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:n]...)
}

// appendEvent appends the JSON of one recorded event:
//
//	{"id","type","version","time","data","metadata"}
//
// data and metadata are the stored JSON bytes, written as they are (they
// were validated and compacted on append). metadata is omitted when the
// event has none. The output never contains a newline, so it is one NDJSON
// line.
func appendEvent(b []byte, e *log.RecordedEvent) []byte {
	return (*encoder)(nil).event(b, e)
}

// appendFeedEvent appends the JSON of one event read from a feed: the
// event's members after its position and stream (a feed mixes streams),
//
//	{"position","stream","id","type","version","time","data","metadata"}
func appendFeedEvent(b []byte, e *log.FeedEvent) []byte {
	return (*encoder)(nil).feedEvent(b, e)
}

// appendEventMembers appends an event's members and the closing brace.
func appendEventMembers(b []byte, e *log.RecordedEvent) []byte {
	return (*encoder)(nil).members(b, e)
}

// encoder writes events as appendEvent and appendFeedEvent do, keeping
// the last time it formatted: the events of a chunk or log record share
// their commit time, and formatting it was a tenth of a replay's CPU. A
// nil encoder formats every time.
type encoder struct {
	at     time.Time
	atJSON []byte // at, as appendTime wrote it
	// The minute of the last time formatted (Unix seconds at its start)
	// and its JSON up to the seconds: the events of a stream appended one
	// at a time differ in their commit times, mostly within a minute, and
	// formatting each whole was 6 % of such a replay's CPU.
	minute     int64
	minuteJSON []byte
}

func (c *encoder) event(b []byte, e *log.RecordedEvent) []byte {
	return c.members(append(b, '{'), e)
}

func (c *encoder) feedEvent(b []byte, e *log.FeedEvent) []byte {
	b = append(b, `{"position":`...)
	b = appendString(b, e.Position)
	b = append(b, `,"stream":`...)
	b = appendString(b, string(e.Stream))
	b = append(b, ',')
	return c.members(b, &e.RecordedEvent)
}

func (c *encoder) members(b []byte, e *log.RecordedEvent) []byte {
	b = append(b, `"id":"`...)
	b = appendUUID(b, e.ID)
	b = append(b, `","type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, e.Version, 10)
	b = append(b, `,"time":`...)
	b = c.time(b, e.Time)
	b = append(b, `,"data":`...)
	b = appendPayload(b, e.Data)
	if len(e.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = appendPayload(b, e.Metadata)
	}
	return append(b, '}')
}

// appendPayload appends an event's stored data or metadata as it is:
// log.AppendRequest.Validate compacted it before it was stored, and JSON
// compacted holds no line break (one inside a string is invalid JSON), so
// it is one NDJSON line's worth without appendRaw's scans (two passes over
// every byte: 4 % of a replay's CPU).
func appendPayload(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

func (c *encoder) time(b []byte, t time.Time) []byte {
	if c == nil {
		return appendTime(b, t)
	}
	if c.atJSON == nil || !t.Equal(c.at) {
		c.at, c.atJSON = t, c.appendTime(c.atJSON[:0], t)
	}
	return append(b, c.atJSON...)
}

// appendTime is appendTime with the minute's JSON kept from one call to
// the next: `"2026-11-01T12:04:` of `"2026-11-01T12:04:05.123000Z"`.
func (c *encoder) appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return appendTime(b, t)
	}
	if m := t.Unix() - int64(t.Second()); c.minuteJSON == nil || m != c.minute {
		j := appendTime(c.minuteJSON[:0], t)
		c.minute, c.minuteJSON = m, j[:len(`"2006-01-02T15:04:`)]
	}
	return appendSeconds(append(b, c.minuteJSON...), t)
}

// appendUUID appends u in its canonical form (as uuid.UUID.String, which
// allocates a string per event), a byte's two digits at a time from a
// table into a fixed array: five hex.AppendEncode calls took 24 ns an
// event, a sixth of a replay's encoding (BenchmarkAppendUUID). Unrolled:
// a loop over the digits' positions took twice as long as this.
func appendUUID(b []byte, u uuid.UUID) []byte {
	var d [36]byte
	put := func(at int, c byte) { d[at], d[at+1] = hexPairs[2*int(c)], hexPairs[2*int(c)+1] }
	put(0, u[0])
	put(2, u[1])
	put(4, u[2])
	put(6, u[3])
	d[8] = '-'
	put(9, u[4])
	put(11, u[5])
	d[13] = '-'
	put(14, u[6])
	put(16, u[7])
	d[18] = '-'
	put(19, u[8])
	put(21, u[9])
	d[23] = '-'
	put(24, u[10])
	put(26, u[11])
	put(28, u[12])
	put(30, u[13])
	put(32, u[14])
	put(34, u[15])
	return append(b, d[:]...)
}

// hexPairs holds each byte's two lower-case hex digits, at twice its value.
var hexPairs = func() (t [512]byte) {
	const digits = "0123456789abcdef"
	for i := range 256 {
		t[2*i], t[2*i+1] = digits[i>>4], digits[i&0xf]
	}
	return t
}()

// appendRaw appends stored JSON, compacting it if it holds line breaks
// (which an NDJSON line cannot) and writing null if it is empty.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	if bytes.IndexByte(raw, '\n') >= 0 || bytes.IndexByte(raw, '\r') >= 0 {
		var buf bytes.Buffer
		if json.Compact(&buf, raw) == nil {
			return append(b, buf.Bytes()...)
		}
	}
	return append(b, raw...)
}

// appendString appends s as a JSON string. Stream ids and event types are
// plain ASCII by construction, but the encoder does not rely on it.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	// Most strings need no escaping: copy the leading run that does not
	// in one append.
	i := plainRun(s)
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendResult is the JSON of an append's outcome. Time is the commit
// time, in the events' time format: once a feed's complete_up_to reaches
// it, the events are in their feeds.
type appendResult struct {
	Stream       log.StreamID        `json:"stream"`
	FirstVersion int64               `json:"first_version"`
	LastVersion  int64               `json:"last_version"`
	Events       []log.AppendedEvent `json:"events"`
	Time         string              `json:"time"`
	Duplicate    bool                `json:"duplicate"`
}

// appendAppendResult appends the JSON of r's appendResult to b, with the
// newline echo's JSON adds: by hand, since encoding/json's reflection was
// 4 % of the server's CPU per 1-event append.
func appendAppendResult(b []byte, r log.AppendResult) []byte {
	b = append(b, `{"stream":`...)
	b = appendString(b, string(r.Stream))
	b = append(b, `,"first_version":`...)
	b = strconv.AppendInt(b, r.FirstVersion, 10)
	b = append(b, `,"last_version":`...)
	b = strconv.AppendInt(b, r.LastVersion, 10)
	b = append(b, `,"events":`...)
	if r.Events == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, e := range r.Events {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":"`...)
			b = appendUUID(b, e.ID)
			b = append(b, `","version":`...)
			b = strconv.AppendInt(b, e.Version, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"time":`...)
	b = appendTime(b, r.Time)
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendBool(b, r.Duplicate)
	return append(b, "}\n"...)
}

func newAppendResult(r log.AppendResult) appendResult {
	return appendResult{Stream: r.Stream, FirstVersion: r.FirstVersion, LastVersion: r.LastVersion, Events: r.Events,
		Time: formatTime(r.Time), Duplicate: r.Duplicate}
}

// plainRun returns the length of s's leading run of bytes that a JSON
// string holds as they are (ASCII from 0x20, but '"' and '\\'), eight
// bytes a step: a feed read writes three strings per event (position,
// stream, type), and a byte at a time was 7 % of its CPU.
func plainRun(s string) int {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		quote, backslash := x^('"'*ones), x^('\\'*ones)
		// The high bit of a lane is set where a byte is from 0x80, below
		// 0x20, '"' or '\\' (a zero byte of quote or backslash). The
		// borrows make these exact only for ASCII, which x&high covers.
		if (x|(x-0x20*ones)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash)&high != 0 {
			break
		}
	}
	for i < len(s) && s[i] >= 0x20 && s[i] < utf8.RuneSelf && s[i] != '"' && s[i] != '\\' {
		i++
	}
	return i
}
