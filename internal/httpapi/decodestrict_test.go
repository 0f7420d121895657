package httpapi

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// TestDecodeStrict: the bodies of group joins and acks and of key
// creation are one JSON value whose members are matched exactly, as the
// README's invalid_json row says: an unknown member, a member given twice
// or spelled in another case is invalid_json, not the last value given
// (a proxy or validator that reads the first would see another request).
func TestDecodeStrict(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		var a ackJSON
		if err := decodeStrict(strings.NewReader(` {"partition": 1, "epoch": 2, "position": "p", "release": true} `), &a); err != nil {
			t.Fatal(err)
		}
		if a.Partition == nil || *a.Partition != 1 || a.Epoch != 2 || a.Position != "p" || !a.Release {
			t.Fatalf("decoded %+v", a)
		}
		var as []ackJSON
		if err := decodeStrict(strings.NewReader(`[{"partition":0,"epoch":1},{"partition":2,"epoch":1,"position":null}]`), &as); err != nil || len(as) != 2 {
			t.Fatalf("decoded %+v, %v", as, err)
		}
	})
	for name, body := range map[string]string{
		"Repeated":         `{"partition":1,"epoch":2,"partition":3}`,
		"RepeatedInArray":  `[{"partition":1,"epoch":2,"position":"a","position":"b"}]`,
		"OtherCase":        `{"Partition":1,"epoch":2}`,
		"Unknown":          `{"partition":1,"epoch":2,"x":1}`,
		"Trailing":         `{"partition":1,"epoch":2} {}`,
		"Empty":            ``,
		"Truncated":        `{"partition":1,`,
		"WrongType":        `{"partition":"1","epoch":2}`,
		"InvalidUTF8Value": "{\"partition\":1,\"epoch\":2,\"position\":\"\xff\"}",
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			if strings.HasPrefix(body, "[") {
				var as []ackJSON
				err = decodeStrict(strings.NewReader(body), &as)
			} else {
				var a ackJSON
				err = decodeStrict(strings.NewReader(body), &a)
			}
			if got := codeOf(err); got != CodeInvalidJSON {
				t.Fatalf("%s: code %q (%v), want %s", body, got, err, CodeInvalidJSON)
			}
		})
	}
	t.Run("ReadErrorWins", func(t *testing.T) {
		var a ackJSON
		err := decodeStrict(io.MultiReader(strings.NewReader(`{"partition":1,`), newLimitedReader(strings.NewReader("xx"), 1, false)), &a)
		if !errors.Is(err, errBodyTooLarge) {
			t.Fatalf("err = %v, want errBodyTooLarge", err)
		}
	})
}

// FuzzDecodeStrict: what decodeStrict accepts is one JSON value with no
// member name repeated in an object, and every member one of the
// struct's, spelled as its tag.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"partition":1,"epoch":2,"position":"p","release":true}`, `[{"partition":0,"epoch":1}]`, `{"partition":1,"partition":1}`, `{"PARTITION":1}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	names := map[string]bool{"partition": true, "epoch": true, "position": true, "release": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		var as []ackJSON
		var a ackJSON
		var err error
		if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '[' {
			err = decodeStrict(bytes.NewReader(body), &as)
		} else {
			err = decodeStrict(bytes.NewReader(body), &a)
		}
		if err != nil {
			if p := ProblemFor(err); p.Status != 400 {
				t.Fatalf("refused as %d %s: %v", p.Status, p.Code, err)
			}
			return
		}
		dec := jsontext.NewDecoder(bytes.NewReader(body)) // refuses repeated names
		for {
			tok, err := dec.ReadToken()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("accepted %q: %v", body, err)
			}
			// A string at an odd length of an object's stack is a name.
			if k, n := dec.StackIndex(dec.StackDepth()); tok.Kind() == '"' && k == '{' && n%2 == 1 && !names[tok.String()] {
				t.Fatalf("accepted %q with member %q", body, tok.String())
			}
		}
	})
}
