package console_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConsole opens every page of the console against one real server:
// each loads without page errors and shows what the test appended.
func TestConsole(t *testing.T) {
	b := mustBrowser(t)
	s := mustServer(t, false)
	id := randomName(t)

	t.Run("Streams", func(t *testing.T) {
		stream := "uistream" + id + "-1"
		// Three appends, so each event has its own commit time.
		for _, typ := range []string{"Created", "Renamed", "Renamed"} {
			s.mustAppend(t, "", stream, typ)
			time.Sleep(5 * time.Millisecond)
		}
		evs := s.mustRead(t, "", stream)
		if len(evs) != 3 || evs[0].Time == evs[1].Time {
			t.Fatalf("appended 3 events at distinct times, read %+v", evs)
		}
		tab := b.newTab(t)
		tab.open(s.URL, "#/streams/"+stream+"?limit=2")
		tab.waitText("[data-field=version]", "3")
		rows := tab.waitText("#events tbody", "Renamed")
		if got := strings.Count(rows, "\n") + 1; got != 2 {
			t.Fatalf("page of 2: %d rows: %q", got, rows)
		}
		// An event: its data and metadata pretty-printed, its commit time.
		tab.click(`#events tr[data-version="1"]`)
		detail := tab.waitText("#event-detail", `"name": "Ada"`)
		for _, want := range []string{`"correlation_id": "c-Created"`, evs[0].Time, evs[0].ID, "Created · version 1"} {
			if !strings.Contains(detail, want) {
				t.Errorf("event detail lacks %q:\n%s", want, detail)
			}
		}
		tab.screenshot("streams")
		// Paging forward, then backward.
		tab.click("#next-page")
		tab.waitFor("#events tbody", "only version 3", func(s string) bool { return strings.HasPrefix(s, "3\t") && !strings.Contains(s, "\n") })
		tab.goTo("#/streams/" + stream + "?dir=backward")
		tab.waitFor("#events tbody", "versions 3, 2, 1", func(s string) bool { return strings.HasPrefix(s, "3\t") && strings.Contains(s, "\n1\t") })
		// Time travel to a version: later events hidden, the aggregate then.
		tab.goTo("#/streams/" + stream + "?version=2")
		tab.waitText("main", "as it was at version 2")
		tab.waitFor("#events tbody", "versions 1 and 2", func(s string) bool { return strings.Contains(s, "2\t") && !strings.Contains(s, "3\t") })
		tab.click("#load-state")
		tab.waitText("#state", "Aggregate at version 2")
		// To an instant: the first event's commit time.
		tab.goTo("#/streams/" + stream + "?until=" + evs[0].Time)
		tab.waitFor("#events tbody", "version 1 only", func(s string) bool { return strings.HasPrefix(s, "1\t") && !strings.Contains(s, "\n") })
		// The stream is remembered for this tab.
		tab.goTo("#/streams")
		tab.waitText(".recent", stream)
		tab.mustNoErrors()
	})

	t.Run("StreamNotFound", func(t *testing.T) {
		tab := b.newTab(t)
		tab.open(s.URL, "#/streams/nostream"+id)
		tab.waitText(".notice", "No stream nostream"+id)
		tab.mustNoErrors("404") // the browser logs the 404 of the lookup
	})

	t.Run("LiveFeed", func(t *testing.T) {
		cat := "uilive" + id
		tab := b.newTab(t)
		tab.open(s.URL, "#/live?kind=category&name="+cat+"&from=now")
		tab.waitFor("#live-status", "live", func(string) bool {
			var st string
			tab.eval(`document.getElementById('live-status').dataset.state || ''`, &st)
			return st == "live"
		})
		// Appended after the view opened: it scrolls in.
		s.mustAppend(t, "", cat+"-1", "Opened")
		tab.waitText("#live-events tbody", cat+"-1")
		tab.screenshot("live")
		// Paused: nothing arrives; resumed: what was appended meanwhile
		// arrives, once.
		tab.click("#live-pause")
		tab.waitText("#live-status", "Paused")
		s.mustAppend(t, "", cat+"-2", "WhilePaused")
		time.Sleep(1500 * time.Millisecond)
		if got := tab.text("#live-events tbody"); strings.Contains(got, "WhilePaused") {
			t.Fatalf("a paused feed showed a new event:\n%s", got)
		}
		tab.click("#live-pause")
		rows := tab.waitText("#live-events tbody", "WhilePaused")
		if n := strings.Count(rows, "Opened"); n != 1 {
			t.Fatalf("after resuming, Opened shown %d times:\n%s", n, rows)
		}
		// A type feed from its start shows what is already there.
		tab.goTo("#/live?kind=type&name=WhilePaused&from=start")
		tab.waitText("#live-events tbody", cat+"-2")
		tab.mustNoErrors()
	})

	t.Run("Groups", func(t *testing.T) {
		cat := "uigroup" + id
		group := "billing" + id
		s.do(t, "", http.MethodPost, "/v1/groups/"+group+"/members", map[string]string{"feed": "category/" + cat, "member": "w-1"}, nil)
		s.mustAppend(t, "", cat+"-1", "A", "B", "C")
		var lag int64
		deadline := time.Now().Add(20 * time.Second)
		for lag != 3 {
			var g struct{ Lag int64 }
			s.do(t, "", http.MethodGet, "/v1/groups/"+group, nil, &g)
			if lag = g.Lag; lag != 3 && time.Now().After(deadline) {
				t.Fatalf("group lag %d, want 3", lag)
			}
			time.Sleep(100 * time.Millisecond)
		}
		tab := b.newTab(t)
		tab.open(s.URL, "#/groups/"+group+"?every=1")
		tab.waitText("#members", "w-1")
		tab.waitFor("[data-metric=group-lag]", "lag 3", func(s string) bool { return s == "3" })
		parts := tab.waitText("#partitions", "w-1")
		// A group's partitions are the keyspace's shards (4 in tests).
		if n := strings.Count(parts, "w-1"); n != 4 {
			t.Errorf("%d partitions owned by w-1, want 4:\n%s", n, parts)
		}
		tab.screenshot("groups")
		tab.goTo("#/groups/nogroup" + id)
		tab.waitText(".notice", "No group nogroup"+id)
		tab.mustNoErrors("404")
	})

	t.Run("Overview", func(t *testing.T) {
		tab := b.newTab(t)
		tab.open(s.URL, "#/overview?every=1")
		tab.waitFor("[data-metric=appended-total]", "a count", func(s string) bool { return s != "" && s != "–" })
		// Appends after the first scrape: a rate and a latency.
		for i := range 10 {
			s.mustAppend(t, "", fmt.Sprintf("uiover%s-%d", id, i), "Tick")
			time.Sleep(200 * time.Millisecond)
		}
		tab.waitFor("[data-metric=append-rate]", "a positive rate", func(s string) bool {
			return s != "" && s != "–" && !strings.HasPrefix(s, "0 ")
		})
		tab.waitFor("[data-metric=append-p99]", "a latency", func(s string) bool { return strings.HasSuffix(s, " ms") })
		tab.waitFor("[data-metric=error-rate]", "an error rate", func(s string) bool { return strings.HasSuffix(s, " %") })
		tab.waitText("main", "billing"+id) // the group's lag gauge
		time.Sleep(time.Second)            // a point more on the charts
		tab.screenshot("overview")
		tab.mustNoErrors()
	})

	t.Run("Cluster", func(t *testing.T) {
		tab := b.newTab(t)
		tab.open(s.URL, "#/cluster")
		tab.waitText("[data-probe=healthz]", "up")
		tab.waitText("[data-probe=readyz]", "ready")
		tab.waitText("#discovery", "GET /v1/streams")
		tab.waitText("#instance", "commits fenced or unknown")
		tab.screenshot("cluster")
		tab.mustNoErrors()
	})

	t.Run("MetricsMath", func(t *testing.T) {
		// The overview's arithmetic (prom.js), run in the browser on a
		// known exposition.
		const exposition = `# HELP h A histogram.
# TYPE h histogram
h_bucket{route="a",le="0.1"} 10
h_bucket{route="a",le="0.5"} 20
h_bucket{route="a",le="+Inf"} 20
h_bucket{route="b",le="0.1"} 5
h_bucket{route="b",le="0.5"} 5
h_bucket{route="b",le="+Inf"} 6
req_total{route="/v1/x",status="500"} 3
req_total{route="/metrics",status="200"} 7
req_total{route="/v1/x",status="201"} 4
esc{l="a\"b\\c",m="x,y"} 1.5e3
`
		text, _ := json.Marshal(exposition)
		tab := b.newTab(t)
		tab.open(s.URL, "#/cluster")
		var got struct {
			P50, P99, AllInf, Rate, Reset, Errors, API, Esc float64
			None                                            *float64
			Label, Label2                                   string
		}
		tab.eval(`(async () => {
			const m = await import('/ui/prom.js');
			const s = m.parse(`+string(text)+`);
			const zero = [[0.1, 0], [0.5, 0], [Infinity, 0]];
			const a = m.buckets(s, 'h', {route: 'a'});
			const esc = s.find((x) => x.name === 'esc');
			return {
				p50: m.quantile(0.5, zero, a), p99: m.quantile(0.99, zero, a),
				allInf: m.quantile(0.5, [[0.1, 5], [0.5, 5], [Infinity, 5]], [[0.1, 5], [0.5, 5], [Infinity, 9]]),
				none: m.quantile(0.5, a, a),
				rate: m.rate(5, 15, 2), reset: m.rate(15, 3, 2),
				errors: m.sum(s, 'req_total', {status: /^5/}),
				api: m.sum(s, 'req_total', {route: /^(?!\/metrics).*$/}),
				esc: esc.value, label: esc.labels.l, label2: esc.labels.m,
			};
		})()`, &got)
		want := struct {
			P50, P99, AllInf, Rate, Reset, Errors, API, Esc float64
			None                                            *float64
			Label, Label2                                   string
		}{P50: 0.1, P99: 0.492, AllInf: 0.5, Rate: 5, Reset: 1.5, Errors: 3, API: 7, Esc: 1500, Label: `a"b\c`, Label2: "x,y"}
		if math.Abs(got.P99-want.P99) < 1e-9 {
			got.P99 = want.P99
		}
		if got != want {
			t.Fatalf("prom.js: got %+v, want %+v", got, want)
		}
		tab.mustNoErrors()
	})

	t.Run("Assets", func(t *testing.T) {
		// The files need no token and carry the console's policy; an
		// unknown one is the API's 404 problem.
		for path, want := range map[string]int{"/ui": 200, "/ui/": 200, "/ui/app.js": 200, "/ui/nope.js": 404} {
			res, err := http.Get(s.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != want {
				t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
			}
			if want == 200 && !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("GET %s: no CSP", path)
			}
		}
	})
}

// TestConsoleDiscovery opens the stream browser and the cluster view
// against a server on the shard-log write path, which serves the
// discovery routes: the browser lists a stream appended by the test, and
// the cluster view shows this instance with its shards and the Cassandra
// node.
func TestConsoleDiscovery(t *testing.T) {
	b := mustBrowser(t)
	s := mustShardServer(t)
	id := randomName(t)
	stream := "uilist" + id + "-1"
	s.mustAppend(t, "", stream, "Created", "Renamed")
	s.mustRead(t, "", stream) // written to its partitions, and listed

	t.Run("StreamListing", func(t *testing.T) {
		tab := b.newTab(t)
		tab.open(s.URL, "#/streams")
		tab.typeInto("#stream-search", "uilist"+id)
		tab.waitText("#listing", stream)
		tab.waitText(`#listing li[data-stream="`+stream+`"]`, "v2")
		tab.screenshot("streams-list")
		// The listing's link opens the stream (followed by its href: the
		// list is redrawn as the search is typed).
		var href string
		tab.eval(`document.querySelector('#listing li[data-stream="`+stream+`"] a').getAttribute('href')`, &href)
		tab.goTo(href)
		tab.waitText("[data-field=version]", "2")
		tab.mustNoErrors()
	})

	t.Run("Cluster", func(t *testing.T) {
		tab := b.newTab(t)
		tab.open(s.URL, "#/cluster")
		tab.waitText("[data-probe=readyz]", "ready")
		inst := tab.waitText("#instances", "(this one)")
		for _, want := range []string{"test-version", "schema", "0:1", "1:1"} {
			if !strings.Contains(inst, want) {
				t.Errorf("instances lack %q:\n%s", want, inst)
			}
		}
		tab.waitText("#nodes", "up")
		tab.waitText("#discovery", "GET /v1/streams")
		tab.screenshot("cluster")
		tab.mustNoErrors()
	})
}
