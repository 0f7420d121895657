package httpapi

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// feedInURL is the feed a /v1/feeds/… path reads ("all", "category/user",
// "type/UserCreated"), subscriptions included.
var feedInURL = regexp.MustCompile(`/v1/feeds/(all|(?:category|type)/[A-Za-z0-9_.:@+=]+)`)

// TestREADMEPositionsStayInTheirFeed checks the README's shell examples
// against the rule the README states: a position token is bound to the
// feed it was read from, and one of another feed is 400 invalid_position.
// A variable assigned from a feed read (POS=$(curl …/v1/feeds/F…)) may be
// passed only to feed F; an `eventlog tail --feed F --from "$X"` resumes
// with positions the block's previous `eventlog tail --feed` printed, so
// both name the same feed. The live subscription examples passed a
// category/user position to the all and type feeds, and were refused.
func TestREADMEPositionsStayInTheirFeed(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	assign := regexp.MustCompile(`^([A-Z_][A-Z0-9_]*)=\$\(`)
	use := regexp.MustCompile(`\$\{?([A-Z_][A-Z0-9_]*)\}?`)
	tailFeed := regexp.MustCompile(`eventlog tail .*--feed ([^ ]+)`)
	tailFrom := regexp.MustCompile(`--from "?\$\{?([A-Z_][A-Z0-9_]*)`)

	feedOf := map[string]string{} // variable → the feed it was read from
	checked := 0
	inBlock, lastTail := false, ""
	for n, line := range strings.Split(string(b), "\n") {
		where := func() string { return "README.md:" + strconv.Itoa(n+1) }
		if strings.HasPrefix(line, "```") {
			inBlock, lastTail = strings.HasPrefix(line, "```sh"), ""
			continue
		}
		if !inBlock {
			continue
		}
		cmd, _, _ := strings.Cut(line, " # ") // leave comments out
		if m := assign.FindStringSubmatch(cmd); m != nil {
			if f := feedInURL.FindStringSubmatch(cmd); f != nil {
				feedOf[m[1]] = f[1]
			}
			continue
		}
		if m := tailFeed.FindStringSubmatch(cmd); m != nil {
			if v := tailFrom.FindStringSubmatch(cmd); v != nil && feedOf[v[1]] == "" {
				checked++
				if lastTail != "" && lastTail != m[1] {
					t.Errorf("%s: %q resumes feed %s from a position of %s, printed by the tail before it", where(), strings.TrimSpace(cmd), m[1], lastTail)
				}
			}
			lastTail = m[1]
		}
		f := feedInURL.FindStringSubmatch(cmd)
		for _, u := range use.FindAllStringSubmatch(cmd, -1) {
			from, ok := feedOf[u[1]]
			if !ok {
				continue
			}
			checked++
			got := ""
			if f != nil {
				got = f[1]
			} else if m := tailFeed.FindStringSubmatch(cmd); m != nil {
				got = m[1]
			}
			if got != from {
				t.Errorf("%s: %q passes $%s, a position of feed %s, to feed %q (400 invalid_position)", where(), strings.TrimSpace(cmd), u[1], from, got)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("checked %d uses of positions: the README's examples were not found", checked)
	}
}
