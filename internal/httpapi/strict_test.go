package httpapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/log"
)

// TestStrictPayloads: with StrictPayloads, data and metadata that repeat a
// member name, hold a lone surrogate (escaped) or invalid UTF-8, or nest
// past the depth limit are invalid_event naming the event and member;
// without it, the same bodies decode (raw invalid UTF-8 excepted).
func TestStrictPayloads(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	strict := decodeOptions{StrictPayloads: true, MaxPayloadDepth: 4}
	for _, c := range []struct {
		name, event string
		lax         bool // accepted without StrictPayloads
		want        string
	}{
		{"DuplicateKey", `{"type":"t","data":{"a":1,"a":2}}`, true, `events[0].data is not strict JSON`},
		{"DuplicateKeyEscaped", `{"type":"t","data":{"a":1,"\u0061":2}}`, true, `duplicate`},
		{"DuplicateKeyNested", `{"type":"t","data":{"x":[{"b":1,"b":1}]}}`, true, `/x/0`},
		{"DuplicateKeyMetadata", `{"type":"t","data":1,"metadata":{"m":1,"m":1}}`, true, `events[0].metadata`},
		{"LoneSurrogate", `{"type":"t","data":"\ud800"}`, true, `surrogate`},
		{"LoneLowSurrogate", `{"type":"t","data":{"k":"x\udc00"}}`, true, `surrogate`},
		{"SurrogateInName", `{"type":"t","data":{"\ud800":1}}`, true, `surrogate`},
		{"InvalidUTF8", "{\"type\":\"t\",\"data\":\"\xff\"}", false, `UTF-8`},
		{"TooDeep", `{"type":"t","data":` + deep(5) + `}`, true, `deeper than 4`},
		{"TooDeepObjects", `{"type":"t","data":{"a":{"a":{"a":{"a":{"a":1}}}}}}`, true, `deeper than 4`},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := `{"events":[` + c.event + `]}`
			_, err := decodeAppend(strings.NewReader(body), strict)
			var ve *log.ValidationError
			if !errors.As(err, &ve) || ve.Code != log.CodeInvalidEvent || !strings.Contains(ve.Message, c.want) {
				t.Fatalf("strict: %v, want invalid_event with %q", err, c.want)
			}
			_, err = decodeAppend(strings.NewReader(body), decodeOptions{})
			if (err == nil) != c.lax {
				t.Fatalf("without strict payloads: %v", err)
			}
		})
	}
	for _, ok := range []string{
		`{"type":"t","data":{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}}`, // one name per object
		`{"type":"t","data":"\ud83d\ude00 ü"}`,                          // a surrogate pair
		`{"type":"t","data":` + deep(4) + `,"metadata":{"a":[[[1]]]}}`,  // at the limit
		`{"type":"t","data":null}`,
	} {
		if _, err := decodeAppend(strings.NewReader(`{"events":[`+ok+`]}`), strict); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
