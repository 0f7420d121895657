// Package console is eventlog's web console: plain HTML, CSS and
// JavaScript modules embedded in the binary (no build step, nothing fetched
// at run time) and the http.Handler that serves them under /ui/.
//
// The console is a client of the public HTTP API and nothing else: every
// page (streams, live feeds, consumer groups, an overview computed from
// /metrics, the cluster) is drawn in the browser from the same routes any
// client calls, with the same bearer token. The assets hold no data, so
// they are served without authentication; the token the console asks for
// when the server answers 401 lives in the tab's sessionStorage only.
//
// Invariants: the assets are a flat directory (one path segment after
// /ui/); every response carries a Content-Security-Policy that allows
// scripts, styles, images and connections from the server's own origin
// only, so a stored event can never run code in the console (event JSON is
// rendered as text nodes, never as HTML).
package console
