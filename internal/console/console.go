package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Prefix is where the console is served: /ui/ (and /ui) is its page,
// /ui/<name> its other files. The page names them by absolute path, so it
// works at either address.
const Prefix = "/ui/"

// csp keeps the console to its own origin: no inline script or style, no
// third-party anything, not framed by other sites.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed assets
var assets embed.FS

// asset is one embedded file, read once at start-up.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the console's files. The zero value is not usable; call
// NewHandler.
type Handler struct {
	files map[string]asset
}

// NewHandler returns the handler of the embedded console.
func NewHandler() *Handler {
	h := &Handler{files: map[string]asset{}}
	entries, err := fs.ReadDir(assets, "assets")
	if err != nil {
		panic("console: embedded assets missing: " + err.Error())
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := assets.ReadFile("assets/" + e.Name())
		if err != nil {
			panic("console: " + err.Error())
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if strings.HasSuffix(e.Name(), ".js") {
			// Module scripts need a JavaScript type whatever the
			// system's MIME table says.
			ct = "text/javascript; charset=utf-8"
		}
		h.files[e.Name()] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return h
}

// Names lists the files the handler serves (index.html is also /ui/).
func (h *Handler) Names() []string {
	out := make([]string, 0, len(h.files))
	for n := range h.files {
		out = append(out, n)
	}
	return out
}

// ServeHTTP serves GET and HEAD of /ui, /ui/ (the page) and /ui/<name>.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem(w, http.StatusMethodNotAllowed, "method_not_allowed", "the console is read with GET")
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		name, ok = "", true
	}
	if name == "" {
		name = "index.html"
	}
	a, found := h.files[name]
	if !ok || !found {
		problem(w, http.StatusNotFound, "not_found", "the console has no file "+r.URL.Path)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", a.etag)
	// Revalidated on every load (an upgraded server serves new files at
	// once) but answered 304 while unchanged.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		// The GET's length: a HEAD writes no body, and the API's router
		// (which serves HEAD as GET, counting the bytes written) would
		// otherwise announce the 0 written.
		hd.Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write(a.body)
}

// problem answers in the API's error format (RFC 9457, with the request
// id the API layer set), so a client sees one kind of error everywhere.
func problem(w http.ResponseWriter, status int, code, detail string) {
	p := map[string]any{
		"type": "urn:eventlog:problem:" + code, "title": http.StatusText(status), "status": status,
		"detail": detail, "code": code,
	}
	if id := w.Header().Get("X-Request-Id"); id != "" {
		p["request_id"] = id
	}
	body, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
