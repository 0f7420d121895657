package console_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/console"
)

// TestHandler checks the file serving on its own: types, the security
// policy, revalidation, and the API's problem format for what is not
// there.
func TestHandler(t *testing.T) {
	h := console.NewHandler()
	get := func(path string, header ...string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	t.Run("Page", func(t *testing.T) {
		for _, path := range []string{"/ui", "/ui/"} {
			w := get(path)
			if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") ||
				!strings.Contains(w.Body.String(), `<script type="module" src="/ui/app.js">`) {
				t.Fatalf("GET %s: %d %s", path, w.Code, w.Header())
			}
		}
	})

	t.Run("Types", func(t *testing.T) {
		for path, want := range map[string]string{
			"/ui/app.js": "text/javascript", "/ui/style.css": "text/css", "/ui/favicon.svg": "image/svg+xml",
		} {
			if w := get(path); w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), want) {
				t.Errorf("GET %s: %d %q, want %s", path, w.Code, w.Header().Get("Content-Type"), want)
			}
		}
	})

	t.Run("Policy", func(t *testing.T) {
		csp := get("/ui/").Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("CSP %q allows inline or eval", csp)
		}
	})

	t.Run("NotModified", func(t *testing.T) {
		etag := get("/ui/app.js").Header().Get("ETag")
		if w := get("/ui/app.js", "If-None-Match", etag); etag == "" || w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Fatalf("revalidation with %q: %d", etag, w.Code)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		for _, path := range []string{"/ui/nope.js", "/ui/../console.go", "/uix", "/ui/assets/app.js"} {
			w := get(path)
			if w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/problem+json" ||
				!strings.Contains(w.Body.String(), `"code":"not_found"`) {
				t.Errorf("GET %s: %d %s %s", path, w.Code, w.Header().Get("Content-Type"), w.Body)
			}
		}
	})

	t.Run("MethodNotAllowed", func(t *testing.T) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/ui/", nil))
		if w.Code != http.StatusMethodNotAllowed {
			t.Fatalf("POST /ui/: %d", w.Code)
		}
	})

	// Every file a page or module refers to is served: a typo would be a
	// 404 only a browser notices.
	t.Run("References", func(t *testing.T) {
		names := h.Names()
		ref := regexp.MustCompile(`(?:href|src)="/ui/([^"]+)"|from '\./([^']+)'|import\('/ui/([^']+)'\)`)
		for _, n := range names {
			if !strings.HasSuffix(n, ".html") && !strings.HasSuffix(n, ".js") {
				continue
			}
			body := get("/ui/" + n).Body.String()
			for _, m := range ref.FindAllStringSubmatch(body, -1) {
				target := m[1] + m[2] + m[3]
				if !slices.Contains(names, target) {
					t.Errorf("%s refers to %s, which is not served", n, target)
				}
			}
		}
	})
}
