package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/httpapi"
)

// prometheusSeries are series Prometheus itself makes for every target.
var prometheusSeries = map[string]bool{"up": true, "scrape_duration_seconds": true}

// exportedSeries starts the API over a real store, registered as cmd/server
// registers them, uses every part of it once (so labelled metrics have
// series), scrapes /metrics and returns the series names it exports
// (histograms and summaries with their _bucket, _sum and _count series),
// and the names registered without a series yet.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, _ := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Registerer = reg
	})
	api, err := httpapi.New(store, httpapi.Config{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(client.Options{BaseURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(ctx, "dash-1", client.NoStream, client.EventData{Type: "t", Data: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(ctx, "dash-1", client.NoStream, client.EventData{Type: "t", Data: 1}); err == nil {
		t.Fatal("a conflicting append succeeded")
	}
	if _, err := c.Read(ctx, "dash-1", client.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadFeed(ctx, client.AllFeed, "", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JoinGroup(ctx, "dash", client.JoinOptions{Feed: client.AllFeed, Member: "m-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GroupInfo(ctx, "dash"); err != nil {
		t.Fatal(err)
	}

	res, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	tp := expfmt.NewTextParser(model.UTF8Validation)
	families, err := tp.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]bool{}
	if _, ok := families["eventlog_http_requests_total"]; !ok {
		t.Fatalf("/metrics has no eventlog_http_requests_total: not the server's metrics")
	}
	// A labelled metric has no series until its first event (a Cassandra
	// error, a feed repair): names the server registers count too.
	descs := make(chan *prometheus.Desc, 64)
	go func() {
		reg.Describe(descs)
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			out[m[1]] = true
		}
	}
	for name, f := range families {
		out[name] = true
		switch f.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case "SUMMARY":
			out[name+"_sum"], out[name+"_count"] = true, true
		}
	}
	return out
}

// metricNames returns the metric names a PromQL expression selects.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %q: %v", where, expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			names = append(names, name)
		}
		return nil
	})
	if len(names) == 0 {
		t.Fatalf("%s: %q selects no metric", where, expr)
	}
	return names
}

func checkNames(t *testing.T, exported map[string]bool, where string, names []string) {
	t.Helper()
	for _, n := range names {
		if !exported[n] && !prometheusSeries[n] {
			t.Errorf("%s names %s, which the server does not export (it exports: %s)", where, n, strings.Join(sorted(exported), " "))
		}
	}
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, "eventlog_") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestDeployNamesExportedMetrics checks the dashboard and the alert rules:
// both parse, every query is valid PromQL, and every metric they name is one
// a real server exports.
func TestDeployNamesExportedMetrics(t *testing.T) {
	exported := exportedSeries(t)

	t.Run("Dashboard", func(t *testing.T) {
		b, err := os.ReadFile("grafana-dashboard.json")
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			Title  string `json:"title"`
			UID    string `json:"uid"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &dash); err != nil {
			t.Fatalf("grafana-dashboard.json: %v", err)
		}
		if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
			t.Fatalf("dashboard without title, uid or panels")
		}
		queries := 0
		for _, p := range dash.Panels {
			for _, tg := range p.Targets {
				queries++
				// Grafana's $__rate_interval becomes a duration at query time.
				expr := strings.ReplaceAll(tg.Expr, "$__rate_interval", "5m")
				checkNames(t, exported, "panel "+p.Title, metricNames(t, "panel "+p.Title, expr))
			}
			if p.Title == "" {
				t.Error("a panel without a title")
			}
		}
		if queries < 8 {
			t.Fatalf("%d queries; the dashboard should cover the server's metrics", queries)
		}
	})

	t.Run("Rules", func(t *testing.T) {
		b, err := os.ReadFile("prometheus-rules.yml")
		if err != nil {
			t.Fatal(err)
		}
		groups, errs := rulefmt.Parse(b, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if len(errs) > 0 {
			t.Fatalf("prometheus-rules.yml: %v", errs)
		}
		alerts := map[string]bool{}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				where := "rule " + r.Alert + r.Record
				checkNames(t, exported, where, metricNames(t, where, r.Expr))
				if r.Alert != "" {
					alerts[r.Alert] = true
					if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
						t.Errorf("%s: needs a severity label and a summary annotation", where)
					}
				}
			}
		}
		for _, want := range []string{"EventlogHighErrorRate", "EventlogHighAppendLatency", "EventlogStreamWritesBehind",
			"EventlogGroupLagging", "EventlogOutcomeUnknown", "EventlogInstanceDown"} {
			if !alerts[want] {
				t.Errorf("no alert %s", want)
			}
		}
	})
}
