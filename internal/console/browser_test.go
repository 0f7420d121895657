package console_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/console"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/httpapi/spectest"
)

// The browser tests drive the console in headless Chromium against a real
// server (the HTTP API over a real Cassandra keyspace, every exchange
// checked against the OpenAPI description by spectest). Each page must
// load without console errors and show what the test appended.
//
// EVENTLOG_TEST_CHROMIUM names the browser binary (default: chromium on
// the PATH); EVENTLOG_CONSOLE_SCREENSHOTS, a directory, saves a screenshot
// of each page there (docs/console-*.png come from such a run).

// chromiumPath finds the browser, or skips the test when there is none,
// except under CI, where .ci/run installs it and its absence is a failure.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("EVENTLOG_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("no chromium binary found, and CI=true: .ci/run installs Debian's chromium package; browser tests cannot be skipped in CI")
	}
	tb.Skip("no chromium binary found (apt-get install chromium, or set EVENTLOG_TEST_CHROMIUM): browser tests skipped")
	return ""
}

// server is the API with the console, over a fresh keyspace.
type server struct {
	URL  string
	Keys *keystore.Store // nil without authentication
	Auth *auth.Authenticator
}

// mustServer starts the API and console; withAuth requires API keys.
func mustServer(tb testing.TB, withAuth bool) *server {
	tb.Helper()
	reg := prometheus.NewRegistry()
	// The process metrics cmd/server registers, for the cluster page.
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, opts := shardstoretest.NewStore(tb, func(so *shardstore.Options) {
		o := &so.Cassandra
		o.Registerer = reg
	})
	cfg := httpapi.Config{
		Registry:      reg,
		Console:       console.NewHandler(),
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		SubscribePoll: 200 * time.Millisecond,
	}
	s := &server{}
	if withAuth {
		ks, err := keystore.New(cassandratest.Session(tb, opts.Cassandra), opts.Cassandra.SerialConsistency, 10*time.Second)
		if err != nil {
			tb.Fatal(err)
		}
		a := auth.NewAuthenticator(ks, auth.Options{})
		if err := a.Start(context.Background()); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(a.Close)
		cfg.Auth, cfg.Keys = a, ks
		s.Keys, s.Auth = ks, a
	}
	api, err := httpapi.New(store, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(spectest.Handler(tb, api))
	tb.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// mustShardServer starts the API and console over a shard-log store (2
// shards) in a fresh keyspace, without authentication.
func mustShardServer(tb testing.TB) *server {
	tb.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o := cassandratest.Options(tb)
	o.Registerer, o.Shards = reg, 2
	if _, err := cassandratest.Migrate(tb, o); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cassandratest.DropBounded(tb, o) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := shardstore.Open(ctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second, Version: "test-version"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(store.Close)
	api, err := httpapi.New(store, httpapi.Config{
		Registry: reg, Console: console.NewHandler(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SubscribePoll: 200 * time.Millisecond,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(spectest.Handler(tb, api))
	tb.Cleanup(ts.Close)
	return &server{URL: ts.URL}
}

// mustToken stores a key with scopes and returns its token.
func (s *server) mustToken(tb testing.TB, name string, scopes ...string) string {
	tb.Helper()
	k, tok, err := auth.NewKey(name, scopes, 0, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Keys.CreateKey(context.Background(), k); err != nil {
		tb.Fatal(err)
	}
	if err := s.Auth.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return tok
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
func (s *server) do(tb testing.TB, token, method, path string, body any, out any) int {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		tb.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return res.StatusCode
}

// event is an event as the API reads it.
type event struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Version  int64           `json:"version"`
	Time     string          `json:"time"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata"`
}

// mustAppend appends events of the given types to stream, each with data
// {"name": "Ada", "n": i} and a correlation id in its metadata.
func (s *server) mustAppend(tb testing.TB, token, stream string, types ...string) {
	tb.Helper()
	evs := make([]map[string]any, len(types))
	for i, t := range types {
		evs[i] = map[string]any{"type": t, "data": map[string]any{"name": "Ada", "n": i + 1}, "metadata": map[string]any{"correlation_id": "c-" + t}}
	}
	s.do(tb, token, http.MethodPost, "/v1/streams/"+stream+"/events", map[string]any{"events": evs}, nil)
}

// mustRead reads a stream's first page.
func (s *server) mustRead(tb testing.TB, token, stream string) []event {
	tb.Helper()
	var page struct{ Events []event }
	s.do(tb, token, http.MethodGet, "/v1/streams/"+stream+"/events", nil, &page)
	return page.Events
}

// randomName is a short random suffix for stream and group names.
func randomName(tb testing.TB) string {
	tb.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// browser is one headless Chromium for a test.
type browser struct {
	ctx context.Context
}

func mustBrowser(tb testing.TB) *browser {
	tb.Helper()
	path := chromiumPath(tb)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI; the page is our own
		chromedp.WindowSize(1200, 820),
		chromedp.DisableGPU,
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		tb.Fatalf("start %s: %v", path, err)
	}
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	return &browser{ctx: ctx}
}

// tab is one browser tab (its own sessionStorage) that records what the
// page reports as errors: console.error and console.warn calls, uncaught
// exceptions, and the browser's own error log (failed loads, CSP
// violations, bad responses).
type tab struct {
	tb  testing.TB
	ctx context.Context

	mu   sync.Mutex
	errs []string
}

func (b *browser) newTab(tb testing.TB) *tab {
	tb.Helper()
	t := &tab{tb: tb}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(t.record))
	tb.Cleanup(cancel)
	t.ctx = ctx
	return t
}

// record keeps the page's error reports (it runs on the tab's event loop:
// quick, no commands).
func (t *tab) record(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeWarning {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level != cdplog.EntryLevelError && ev.Entry.Level != cdplog.EntryLevelWarning {
			return
		}
		msg = fmt.Sprintf("browser %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	t.mu.Lock()
	t.errs = append(t.errs, msg)
	t.mu.Unlock()
}

// do runs chromedp actions, failing the test on error.
func (t *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.tb.Fatalf("browser: %v (page errors: %v)", err, t.errors())
	}
}

// open loads the console at hash (e.g. "#/streams/user-42").
func (t *tab) open(base, hash string) {
	t.tb.Helper()
	// The tab's first action starts it: not under a timeout, which would
	// close it (chromedp.Run).
	if err := chromedp.Do(t.ctx); err != nil {
		t.tb.Fatal(err)
	}
	t.do(chromedp.Navigate(base + "/ui/" + hash))
}

// goTo changes the console's route without reloading it.
func (t *tab) goTo(hash string) {
	t.tb.Helper()
	t.eval(fmt.Sprintf("location.hash = %q", hash), nil)
}

// eval evaluates js (awaiting a promise) and decodes its JSON value into
// out, if not nil.
func (t *tab) eval(js string, out any) {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.tb.Fatalf("evaluate %s: %v (page errors: %v)", js, err, t.errors())
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.tb.Fatalf("evaluate %s: %v in %s", js, err, b)
		}
	}
}

// text is the visible text of the first element matching sel ("" if none).
func (t *tab) text(sel string) string {
	t.tb.Helper()
	var s string
	t.eval(fmt.Sprintf("(document.querySelector(%q) || {}).innerText || ''", sel), &s)
	return s
}

// waitText waits until the element matching sel shows want.
func (t *tab) waitText(sel, want string) string {
	t.tb.Helper()
	return t.waitFor(sel, "text containing "+want, func(s string) bool { return strings.Contains(s, want) })
}

// waitFor waits until the text of sel satisfies ok.
func (t *tab) waitFor(sel, what string, ok func(string) bool) string {
	t.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := t.text(sel)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.screenshot("failed-" + strings.ReplaceAll(t.tb.Name(), "/", "-"))
			t.tb.Fatalf("%s never showed %s; it shows %q (page errors: %v)", sel, what, s, t.errors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// click clicks the first element matching sel, once it is visible.
func (t *tab) click(sel string) {
	t.tb.Helper()
	t.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// typeInto replaces the value of the input sel with text, as typed keys.
func (t *tab) typeInto(sel, text string) {
	t.tb.Helper()
	t.eval(fmt.Sprintf("document.querySelector(%q).value = ''", sel), nil)
	t.do(chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible))
}

func (t *tab) errors() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.errs...)
}

// mustNoErrors fails the test if the page reported errors, other than
// those containing one of allowed (expected refusals).
func (t *tab) mustNoErrors(allowed ...string) {
	t.tb.Helper()
outer:
	for _, e := range t.errors() {
		if notServed.MatchString(e) {
			continue // the per-stream write path has no discovery routes
		}
		for _, a := range allowed {
			if strings.Contains(e, a) {
				continue outer
			}
		}
		t.tb.Errorf("page error: %s", e)
	}
}

// notServed is the browser's log line for a discovery route a server on
// the per-stream write path answers 501 (the stream browser asks for the
// listing on every visit; the cluster view for /v1/cluster).
var notServed = regexp.MustCompile(`status of 501 \(Not Implemented\) https?://[^/]+/v1/(streams\?|cluster$)`)

// screenshot saves the viewport as dir/console-name.png when
// EVENTLOG_CONSOLE_SCREENSHOTS names a directory.
func (t *tab) screenshot(name string) {
	t.tb.Helper()
	dir := os.Getenv("EVENTLOG_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644); err != nil {
		t.tb.Fatal(err)
	}
}
