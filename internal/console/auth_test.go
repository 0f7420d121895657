package console_test

import (
	"testing"
)

// TestConsoleAuth runs the console against a server that requires API
// keys: its files load without one, the API's 401 makes it ask for a token,
// which it keeps in the tab's sessionStorage only and sends with every
// call (subscriptions too); a key without the scope is a clear 403.
func TestConsoleAuth(t *testing.T) {
	b := mustBrowser(t)
	s := mustServer(t, true)
	admin := s.mustToken(t, "ui-admin", "admin")
	narrow := s.mustToken(t, "ui-narrow", "read:other-*")
	id := randomName(t)
	stream := "uiauth" + id + "-1"
	s.mustAppend(t, admin, stream, "Created")

	tab := b.newTab(t)
	tab.open(s.URL, "#/streams/"+stream)
	tab.waitText("#banner", "401: this server requires an API key")
	tab.waitText(".error[data-status='401']", "401 unauthenticated")
	var hidden bool
	tab.eval(`document.getElementById('token-dialog').hidden`, &hidden)
	if hidden {
		t.Fatal("a 401 did not open the token prompt")
	}
	tab.screenshot("token")

	tab.typeInto("#token-input", admin)
	tab.click("#token-save")
	tab.waitText("#events tbody", "Created")
	tab.waitText("#token-button", "API token: set")
	var stored struct {
		Session string
		Local   int
	}
	tab.eval(`({session: sessionStorage.getItem('eventlog.token'), local: localStorage.length})`, &stored)
	if stored.Session != admin || stored.Local != 0 {
		t.Fatalf("token kept as %+v, want it in sessionStorage only", stored)
	}

	// The live feed sends the token too (fetch, not EventSource).
	tab.goTo("#/live?kind=category&name=uiauth" + id + "&from=now")
	tab.waitFor("#live-status", "live", func(string) bool {
		var st string
		tab.eval(`document.getElementById('live-status').dataset.state || ''`, &st)
		return st == "live"
	})
	s.mustAppend(t, admin, stream, "Renamed")
	tab.waitText("#live-events tbody", "Renamed")

	// A key whose scopes do not cover the stream, nor /metrics.
	tab.goTo("#/streams/" + stream)
	tab.waitText("#events tbody", "Renamed")
	tab.click("#token-button")
	tab.typeInto("#token-input", narrow)
	tab.click("#token-save")
	tab.waitText(".error[data-status='403']", "403 forbidden")
	tab.goTo("#/overview")
	tab.waitText(".error[data-status='403']", "GET /metrics: 403 forbidden")

	// Forgotten: gone from the tab.
	tab.click("#token-button")
	tab.click("#token-clear")
	tab.waitText("#token-button", "API token: none")
	var left *string
	tab.eval(`sessionStorage.getItem('eventlog.token')`, &left)
	if left != nil {
		t.Fatalf("token still stored after forgetting it: %q", *left)
	}
	// The refusals were expected; nothing else may be reported.
	tab.mustNoErrors("status of 401", "status of 403")

	// Another tab starts without a token.
	other := b.newTab(t)
	other.open(s.URL, "#/cluster")
	other.waitText("[data-probe=readyz]", "ready") // probes need no key
	other.waitText(".error[data-status='401']", "401 unauthenticated")
	other.mustNoErrors("status of 401")
}
