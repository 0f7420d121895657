package spectest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/eventlog/eventlog/internal/httpapi"
)

// maxCapture bounds the request and response bytes kept for validation; a
// larger body is checked for status and headers only.
const maxCapture = 16 << 20

// Validator checks requests and responses against an OpenAPI document.
//
// kin-openapi routes each exchange and checks its parameters, status and
// headers. Bodies are checked here, with the same JSON Schema 2020-12
// validator kin-openapi uses for OpenAPI 3.1 (santhosh-tekuri/jsonschema)
// but compiled once per schema: kin-openapi compiles a body's schema, with
// every component it refers to, on each call (about 40 ms), which made the
// HTTP tests several times slower.
type Validator struct {
	doc    *openapi3.T
	raw    any // the document as JSON, for schema locations
	router routers.Router

	mu       sync.Mutex // guards compiler and schemas
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema // by JSON pointer
}

// docURL names the document as a JSON Schema resource; schemas are
// compiled at docURL#<pointer>, so their $refs resolve within it.
const docURL = "file:///openapi.json"

var (
	loadOnce sync.Once
	loaded   *Validator
	loadErr  error
)

// Load returns the validator of httpapi.OpenAPI(), loaded and checked once
// per test binary.
func Load(tb testing.TB) *Validator {
	tb.Helper()
	loadOnce.Do(func() { loaded, loadErr = New(httpapi.OpenAPI()) })
	if loadErr != nil {
		tb.Fatalf("openapi.json: %v", loadErr)
	}
	return loaded
}

// New loads and validates an OpenAPI document.
func New(spec []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(spec))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // date-time, uuid: the server writes both
	if err := c.AddResource(docURL, raw); err != nil {
		return nil, err
	}
	return &Validator{doc: doc, raw: raw, router: r, compiler: c, schemas: map[string]*jsonschema.Schema{}}, nil
}

// schema returns the compiled schema at pointer in the document.
func (v *Validator) schema(pointer string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if sch, ok := v.schemas[pointer]; ok {
		return sch, nil
	}
	sch, err := v.compiler.Compile(docURL + "#" + pointer)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", pointer, err)
	}
	v.schemas[pointer] = sch
	return sch, nil
}

// lookup follows tokens from the document's root, through any $ref it
// meets on the way (to "#/…" locations), and returns the value found and
// its JSON pointer.
func (v *Validator) lookup(tokens ...string) (any, string, bool) {
	cur, ptr := v.raw, ""
	for _, tok := range tokens {
		cur, ptr = v.deref(cur, ptr)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, "", false
		}
		if cur, ok = m[tok]; !ok {
			return nil, "", false
		}
		ptr += "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(tok)
	}
	cur, ptr = v.deref(cur, ptr)
	return cur, ptr, true
}

// deref resolves a {"$ref": "#/…"} object (not a schema's: lookup stops at
// schemas, which the compiler resolves).
func (v *Validator) deref(cur any, ptr string) (any, string) {
	m, ok := cur.(map[string]any)
	if !ok {
		return cur, ptr
	}
	ref, ok := m["$ref"].(string)
	if !ok || !strings.HasPrefix(ref, "#/") {
		return cur, ptr
	}
	var toks []string
	for _, t := range strings.Split(ref[2:], "/") {
		toks = append(toks, strings.NewReplacer("~1", "/", "~0", "~").Replace(t))
	}
	val, p, ok := v.lookup(toks...)
	if !ok {
		return cur, ptr
	}
	return val, p
}

// mediaSchema returns the pointer of the schema of media type ct in the
// content object at tokens, or an error naming the undocumented media type.
func (v *Validator) mediaSchema(ct string, tokens ...string) (string, error) {
	content, ptr, ok := v.lookup(tokens...)
	if !ok {
		return "", nil // no content documented: no body to check
	}
	m, _ := content.(map[string]any)
	mt := mediaType(ct)
	for key := range m {
		if mediaType(key) == mt {
			if _, ok := m[key].(map[string]any)["schema"]; !ok {
				return "", nil
			}
			return ptr + "/" + strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1") + "/schema", nil
		}
	}
	return "", fmt.Errorf("media type %q is not in the description", ct)
}

// checkBody decodes body as its media type says and validates it against
// the schema at pointer.
func (v *Validator) checkBody(pointer, ct string, body []byte) error {
	sch, err := v.schema(pointer)
	if err != nil {
		return err
	}
	var val any
	switch mediaType(ct) {
	case httpapi.MediaTypeNDJSON:
		val, err = decodeNDJSON(bytes.NewReader(body))
	case httpapi.MediaTypeEventStream:
		val, err = decodeSSE(bytes.NewReader(body))
	case "text/plain":
		val = string(body)
	default:
		val, err = jsonschema.UnmarshalJSON(bytes.NewReader(body))
	}
	if err != nil {
		return fmt.Errorf("decode %s body: %w", ct, err)
	}
	if err := sch.Validate(val); err != nil {
		return fmt.Errorf("body doesn't match %s: %w", pointer, err)
	}
	return nil
}

// Doc is the loaded document.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// Handler serves h and checks every exchange with Check, reporting
// mismatches with tb.Errorf.
func Handler(tb testing.TB, h http.Handler) http.Handler {
	tb.Helper()
	v := Load(tb)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &Exchange{
			Method: r.Method,
			URL:    cloneURL(r.URL),
			Header: r.Header.Clone(),
		}
		body := &captureReader{r: r.Body}
		r.Body = body
		rec := &recorder{ResponseWriter: w}
		defer func() {
			rv := recover()
			// The handler may have stopped reading (an early error): keep
			// what the client sent, to judge the request as sent.
			if !body.overflow {
				_, _ = io.Copy(io.Discard, body)
			}
			ex.Body, ex.BodyComplete = body.buf.Bytes(), !body.overflow
			ex.Status = rec.status
			if ex.Status == 0 {
				ex.Status = http.StatusOK
			}
			ex.ResponseHeader = rec.header
			if ex.ResponseHeader == nil {
				ex.ResponseHeader = w.Header().Clone()
			} else {
				// Trailers are set after the body; they are part of the answer.
				for k, vs := range w.Header() {
					if _, ok := ex.ResponseHeader[k]; !ok {
						ex.ResponseHeader[k] = vs
					}
				}
			}
			ex.ResponseBody = rec.buf.Bytes()
			ex.ResponseComplete = !rec.overflow && !rec.cut && rv == nil
			if err := v.Check(ex); err != nil {
				tb.Errorf("openapi: %s %s -> %d: %v", ex.Method, ex.URL.RequestURI(), ex.Status, err)
			}
			if rv != nil {
				panic(rv)
			}
		}()
		h.ServeHTTP(rec, r)
	})
}

// Exchange is one request and its response, as seen by the server.
type Exchange struct {
	Method string
	URL    *url.URL
	Header http.Header
	Body   []byte
	// BodyComplete is false when the request body was too large to keep.
	BodyComplete bool

	Status         int
	ResponseHeader http.Header
	ResponseBody   []byte
	// ResponseComplete is false when the response was cut (a failed
	// stream, or a client that went away mid-body) or too large to keep:
	// only its status and headers are checked.
	ResponseComplete bool
}

// Check validates ex:
//
//   - a request the description does not route (unknown path or method)
//     must be answered by a 4xx problem;
//   - a request the description rejects must not succeed: its answer must
//     be 4xx;
//   - every response must be one the description lists for the operation
//     (status, headers, media type and body schema);
//   - a HEAD is checked as the GET it stands for (the description lists
//     GET operations only; every one answers HEAD), without a body; a
//     HEAD of a route without GET is checked as the 405 it is.
func (v *Validator) Check(ex *Exchange) error {
	if ex.Method == http.MethodHead && ex.Status != http.StatusMethodNotAllowed {
		get := *ex
		get.Method = http.MethodGet
		if len(get.ResponseBody) == 0 {
			get.ResponseComplete = false // headers and status only
		}
		ex = &get
	}
	if ce := ex.ResponseHeader.Get("Content-Encoding"); ce != "" && ex.ResponseComplete {
		body, err := decodeResponse(ce, ex.ResponseHeader.Get("Content-Type"), ex.ResponseBody)
		if err != nil {
			return fmt.Errorf("response body (Content-Encoding %s): %w", ce, err)
		}
		decoded := *ex
		decoded.ResponseBody = body
		ex = &decoded
	}
	req, err := http.NewRequest(ex.Method, ex.URL.String(), nil)
	if err != nil {
		return err
	}
	req.Header = ex.Header.Clone()
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		if ex.Status < 400 || ex.Status >= 500 {
			return fmt.Errorf("the route is not in the description (%v) but the server answered %d", err, ex.Status)
		}
		return v.checkProblem(ex)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		MultiError:            true,
		IncludeResponseStatus: true,
	}
	reqErr := v.checkRequest(req, ex, route, params, opts)
	if reqErr != nil && ex.Status < 400 {
		if !lineResults(route) || ex.Status != http.StatusOK || !ex.ResponseComplete {
			return fmt.Errorf("the server accepted (%d) a request the description rejects: %w", ex.Status, reqErr)
		}
		if err := v.checkLineProblems(ex, route); err != nil {
			return err
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	ropts := *opts
	ropts.ExcludeResponseBody = true // checked below
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 ex.Status,
		Header:                 ex.ResponseHeader,
		Body:                   io.NopCloser(bytes.NewReader(nil)),
		Options:                &ropts,
	}); err != nil {
		return fmt.Errorf("response: %w\nbody: %s", err, snippet(ex.ResponseBody))
	}
	if !ex.ResponseComplete {
		return nil
	}
	ct := ex.ResponseHeader.Get("Content-Type")
	ptr, err := v.mediaSchema(ct, "paths", route.Path, strings.ToLower(route.Method), "responses", strconv.Itoa(ex.Status), "content")
	if err == nil && ptr != "" {
		err = v.checkBody(ptr, ct, completeItems(ct, ex.ResponseBody))
	}
	if err != nil {
		return fmt.Errorf("response: %w\nbody: %s", err, snippet(ex.ResponseBody))
	}
	return nil
}

// checkRequest validates the request, decompressing its body first.
func (v *Validator) checkRequest(req *http.Request, ex *Exchange, route *routers.Route, params map[string]string, opts *openapi3filter.Options) error {
	o := *opts
	o.ExcludeRequestBody = true // checked below
	if err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route, Options: &o,
	}); err != nil {
		return err
	}
	rb := route.Operation.RequestBody
	if rb == nil || !ex.BodyComplete {
		return nil
	}
	body, err := decode(ex.Header.Get("Content-Encoding"), ex.Body)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		if rb.Value.Required {
			return errors.New("the request body is required")
		}
		return nil
	}
	ct := ex.Header.Get("Content-Type")
	ptr, err := v.mediaSchema(ct, "paths", route.Path, strings.ToLower(route.Method), "requestBody", "content")
	if err != nil || ptr == "" {
		return err
	}
	return v.checkBody(ptr, ct, body)
}

// lineResults reports an operation that answers each NDJSON line of its
// request on its own (bulk appends): a bad line is answered by a problem
// line in a 200 response, not by an error status.
func lineResults(route *routers.Route) bool {
	b, _ := route.Operation.Extensions["x-eventlog-line-results"].(bool)
	return b
}

// checkLineProblems checks a 200 answer to a request with bad lines: each
// line that does not match the request's item schema must be answered by a
// problem for that line, and an undecodable body by a last line that is a
// problem.
func (v *Validator) checkLineProblems(ex *Exchange, route *routers.Route) error {
	problems := map[float64]bool{}
	var last map[string]any
	for _, line := range bytes.Split(ex.ResponseBody, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("result line %q: %w", line, err)
		}
		if _, ok := m["code"]; ok {
			n, _ := m["line"].(float64)
			problems[n] = true
		}
		last = m
	}
	body, err := decode(ex.Header.Get("Content-Encoding"), ex.Body)
	if err != nil {
		if _, ok := last["code"]; !ok {
			return fmt.Errorf("the request body cannot be decoded (%v) but the last result line is not a problem", err)
		}
		return nil
	}
	ptr, err := v.mediaSchema(httpapi.MediaTypeNDJSON, "paths", route.Path, strings.ToLower(route.Method), "requestBody", "content")
	if err != nil || ptr == "" {
		return fmt.Errorf("the line-results operation has no NDJSON schema: %v", err)
	}
	items, err := v.schema(ptr + "/items")
	if err != nil {
		return err
	}
	for i, line := range bytes.Split(body, []byte("\n")) {
		n := i + 1
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		val, err := decodeJSON(bytes.TrimSpace(line))
		if err == nil {
			err = items.Validate(val)
		}
		if err != nil && !problems[float64(n)] {
			return fmt.Errorf("request line %d does not match the description (%v) but no problem answers it", n, err)
		}
	}
	return nil
}

// checkProblem validates the problem answering an unrouted request.
func (v *Validator) checkProblem(ex *Exchange) error {
	if ex.ResponseHeader.Get(httpapi.HeaderRequestID) == "" {
		return fmt.Errorf("no %s header", httpapi.HeaderRequestID)
	}
	if ct := ex.ResponseHeader.Get("Content-Type"); ct != httpapi.MediaTypeProblem {
		return fmt.Errorf("Content-Type %q, want %s", ct, httpapi.MediaTypeProblem)
	}
	return v.checkBody("/components/schemas/Problem", ex.ResponseHeader.Get("Content-Type"), ex.ResponseBody)
}

// decode undoes a request's Content-Encoding, as the server does.
func decode(encoding string, b []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return b, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return io.ReadAll(zr)
	}
	return nil, fmt.Errorf("unknown Content-Encoding %q", encoding)
}

// decodeResponse undoes a response's Content-Encoding (the server
// compresses as the request's Accept-Encoding asks). A streamed body the
// client stopped reading mid-way (a live subscription it closed) may end
// inside the compressed stream: what decodes is kept, and completeItems
// drops its incomplete last item.
func decodeResponse(encoding, contentType string, b []byte) ([]byte, error) {
	body, err := decode(encoding, b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		switch mediaType(contentType) {
		case httpapi.MediaTypeNDJSON, httpapi.MediaTypeEventStream:
			return body, nil
		}
	}
	return body, err
}

// completeItems drops a streamed body's incomplete last item (a
// subscription ended by the client mid-write): the server ends every NDJSON
// line with a newline and every SSE message with a blank line.
func completeItems(contentType string, b []byte) []byte {
	switch mediaType(contentType) {
	case httpapi.MediaTypeNDJSON:
		return b[:bytes.LastIndexByte(b, '\n')+1]
	case httpapi.MediaTypeEventStream:
		if i := bytes.LastIndex(b, []byte("\n\n")); i >= 0 {
			return b[:i+2]
		}
		return nil
	}
	return b
}

func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

func snippet(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

func cloneURL(u *url.URL) *url.URL {
	c := *u
	return &c
}

// captureReader keeps what the handler reads of a request body.
type captureReader struct {
	r        io.ReadCloser
	buf      bytes.Buffer
	overflow bool
}

func (c *captureReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if !c.overflow {
		if c.buf.Len()+n > maxCapture {
			c.overflow = true
			c.buf.Reset()
		} else {
			c.buf.Write(p[:n])
		}
	}
	return n, err
}

func (c *captureReader) Close() error { return c.r.Close() }

// recorder keeps the status, headers and body a handler sends. Unwrap lets
// http.ResponseController reach the connection (flushes, deadlines, full
// duplex) as without it.
type recorder struct {
	http.ResponseWriter
	status   int
	header   http.Header
	buf      bytes.Buffer
	overflow bool
	// cut: a write failed (the client went away, as a browser does when
	// it navigates on), so the body kept is a prefix of the answer.
	cut bool
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
		r.header = r.ResponseWriter.Header().Clone()
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(p)
	if err != nil {
		r.cut = true
	}
	if !r.overflow {
		if r.buf.Len()+n > maxCapture {
			r.overflow = true
			r.buf.Reset()
		} else {
			r.buf.Write(p[:n])
		}
	}
	return n, err
}

func (r *recorder) FlushError() error { return http.NewResponseController(r.ResponseWriter).Flush() }

// Flush is FlushError for wrappers that flush through http.Flusher alone
// (the server's compressor does).
func (r *recorder) Flush() { _ = r.FlushError() }

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// The description models the streamed media types as arrays of their
// items (see its introduction); these decoders read them so.

// decodeNDJSON reads one JSON value per non-blank line.
func decodeNDJSON(body io.Reader) (any, error) {
	items := []any{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), maxCapture)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		v, err := decodeJSON(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		items = append(items, v)
	}
	return items, sc.Err()
}

// decodeSSE reads Server-Sent Events messages as objects of their fields:
// retry (a number), id (a string) and data (its JSON). Comments are
// skipped; a field this API never sends is an error.
func decodeSSE(body io.Reader) (any, error) {
	items := []any{}
	msg := map[string]any{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), maxCapture)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(msg) > 0 {
				items = append(items, msg)
				msg = map[string]any{}
			}
			continue
		case strings.HasPrefix(line, ":"):
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		if _, dup := msg[name]; dup {
			return nil, fmt.Errorf("SSE field %q repeated in one message", name)
		}
		switch name {
		case "id":
			msg[name] = value
		case "retry":
			n, err := strconv.Atoi(value)
			if err != nil {
				return nil, fmt.Errorf("SSE retry %q: %w", value, err)
			}
			msg[name] = n
		case "data":
			v, err := decodeJSON([]byte(value))
			if err != nil {
				return nil, fmt.Errorf("SSE data: %w", err)
			}
			msg[name] = v
		default:
			return nil, fmt.Errorf("unexpected SSE field %q", name)
		}
	}
	if len(msg) > 0 {
		items = append(items, msg)
	}
	return items, sc.Err()
}

// decodeJSON decodes one JSON value, numbers as json.Number (exact, as
// the schema validator wants them).
func decodeJSON(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}
