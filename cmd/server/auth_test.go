package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/httpapi"
)

func TestAuthMode(t *testing.T) {
	for _, c := range []struct {
		args     []string
		required bool
		err      string
	}{
		{nil, false, ""},
		{[]string{"--listen=localhost:8080"}, false, ""},
		{[]string{"--listen=[::1]:8080"}, false, ""},
		{[]string{"--listen=0.0.0.0:8080"}, true, ""},
		{[]string{"--listen=:8080"}, true, ""},
		{[]string{"--metrics-listen=10.0.0.1:9100"}, true, ""},
		{[]string{"--auth=required"}, true, ""},
		{[]string{"--auth=off"}, false, ""},
		{[]string{"--auth=off", "--listen=0.0.0.0:8080"}, false, "not a loopback"},
		{[]string{"--auth=off", "--pprof-listen=192.168.1.2:6060"}, false, "not a loopback"},
		{[]string{"--auth=maybe"}, false, "want auto"},
		{[]string{"--tls-cert-file=x.pem"}, false, "go together"},
	} {
		cfg := DefaultConfig()
		err := cfg.ParseFlags("server", c.args, env(nil), io.Discard)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: %v, want an error with %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if got, _ := cfg.authRequired(); got != c.required {
			t.Errorf("%v: auth required = %v", c.args, got)
		}
	}
	cfg := DefaultConfig()
	if err := cfg.ParseFlags("server", nil, env(map[string]string{"EVENTLOG_AUTH": "required"}), io.Discard); err != nil || cfg.Auth != "required" {
		t.Fatalf("EVENTLOG_AUTH: %v %q", err, cfg.Auth)
	}
	if h := cfg.allowedHosts(); strings.Join(h, ",") != "localhost,127.0.0.1,::1" {
		t.Fatalf("default allowed hosts on loopback: %v", h)
	}
	cfg.Listen = "0.0.0.0:80"
	if h := cfg.allowedHosts(); h != nil {
		t.Fatalf("allowed hosts on a public listener: %v", h)
	}
}

// keysCmd runs `server keys ...` against o's keyspace.
func keysCmd(t *testing.T, keyspace string, hosts []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(append([]string{"keys"}, args...), "--keyspace="+keyspace, "--cassandra-hosts="+strings.Join(hosts, ","), "--log-format=text")
	code := run(context.Background(), func() {}, args, env(nil), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestKeysCommandAndRequiredAuth: the first admin key is made with `server
// keys create` before the server runs; the server then requires it; the
// token is on the last line of stdout; revoke and list work.
func TestKeysCommandAndRequiredAuth(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	code, out, errOut := keysCmd(t, o.Keyspace, o.Hosts, "create", "--name=admin", "--scope=admin")
	if code != 0 {
		t.Fatalf("keys create: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := lines[len(lines)-1]
	if !strings.HasPrefix(token, "evl_") || strings.Contains(token, " ") {
		t.Fatalf("last stdout line is not the token: %q", out)
	}
	if strings.Contains(errOut, token) {
		t.Fatal("the token is in the logs")
	}
	if code, _, errOut := keysCmd(t, o.Keyspace, o.Hosts, "create", "--name=admin", "--scope=read:*"); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("second create of a name: %d %s", code, errOut)
	}
	if code, _, _ := keysCmd(t, o.Keyspace, o.Hosts, "create", "--name=x", "--scope=write:*"); code != 1 {
		t.Fatalf("bad scope: exit %d", code)
	}
	code, _, errOut = keysCmd(t, o.Keyspace, o.Hosts, "create", "--name=reader", "--scope", "read:user-*", "--scope=append:user-1", "--expires=1h")
	if code != 0 {
		t.Fatalf("create reader: %s", errOut)
	}

	m := MustRunMain(t, o, "--auth=required")
	base := "http://" + m.Addr()
	get := func(path, bearer string) *http.Response {
		req, _ := http.NewRequest("GET", base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	if res := get("/v1/streams/user-1", ""); res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %v", res.StatusCode, res.Header)
	}
	if res := get("/v1/streams/user-1", token); res.StatusCode != http.StatusNotFound {
		t.Fatalf("admin token: %d", res.StatusCode)
	}
	if res := get("/metrics", token); res.StatusCode != http.StatusOK {
		t.Fatalf("metrics as admin: %d", res.StatusCode)
	}
	if res := get("/healthz", ""); res.StatusCode != http.StatusOK || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("healthz: %d %v", res.StatusCode, res.Header)
	}

	code, out, _ = keysCmd(t, o.Keyspace, o.Hosts, "list")
	if code != 0 || !strings.Contains(out, "reader") || !strings.Contains(out, "read:user-*,append:user-1") || strings.Contains(out, token) {
		t.Fatalf("list: %d\n%s", code, out)
	}
	if code, _, errOut := keysCmd(t, o.Keyspace, o.Hosts, "revoke", "admin"); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	if code, _, _ := keysCmd(t, o.Keyspace, o.Hosts, "revoke", "nobody"); code != 1 {
		t.Fatalf("revoke of an unknown key: exit %d", code)
	}
	waitFor(t, 10*time.Second, "the revoked key to be refused", func() bool {
		return get("/v1/streams/user-1", token).StatusCode == http.StatusUnauthorized
	})
	if code, out, _ := keysCmd(t, o.Keyspace, o.Hosts, "list"); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke: %s", out)
	}
}

// TestMetricsListener: with keys required, /metrics on the API listener
// needs an admin key, while --metrics-listen serves it (and pprof) without.
func TestMetricsListener(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	m := MustRunMain(t, o, "--auth=required", "--metrics-listen=127.0.0.1:0")
	for url, want := range map[string]int{
		"http://" + m.Addr() + "/metrics":             http.StatusUnauthorized,
		"http://" + m.MetricsAddr() + "/metrics":      http.StatusOK,
		"http://" + m.MetricsAddr() + "/debug/pprof/": http.StatusOK,
		"http://" + m.Addr() + "/debug/pprof/":        http.StatusUnauthorized,
	} {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: %d, want %d", url, res.StatusCode, want)
		}
		if want == 200 && strings.HasSuffix(url, "/metrics") && !bytes.Contains(b, []byte("eventlog_http_requests_in_flight")) {
			t.Errorf("%s: no eventlog metrics", url)
		}
	}
}

// TestHostCheck: a loopback listener answers only for loopback names, so a
// page that rebinds its own name to 127.0.0.1 is refused.
func TestHostCheck(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	m := MustRunMain(t, o)
	for host, want := range map[string]int{"attacker.example": http.StatusMisdirectedRequest, "localhost": 200, "127.0.0.1": 200, "LOCALHOST:80": 200} {
		req, _ := http.NewRequest("GET", "http://"+m.Addr()+"/healthz", nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want || (want != 200 && !bytes.Contains(b, []byte(`"code":"invalid_host"`))) {
			t.Errorf("Host %s: %d %s, want %d", host, res.StatusCode, b, want)
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into dir.
func selfSigned(t *testing.T, dir, cn string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Written to temporary names and renamed, as a renewal would.
	if err := os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}

// TestHTTPS: with --tls-cert-file/--tls-key-file the API is served over
// TLS 1.2+ only, and a renewed certificate is picked up without restart.
func TestHTTPS(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	dir := t.TempDir()
	certFile, keyFile, cert := selfSigned(t, dir, "first")
	m := MustRunMain(t, o, "--tls-cert-file="+certFile, "--tls-key-file="+keyFile)

	client := func(trust *x509.Certificate, maxVersion uint16) *http.Client {
		pool := x509.NewCertPool()
		pool.AddCert(trust)
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: maxVersion}}}
	}
	res, err := client(cert, 0).Get("https://" + m.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil || res.TLS.PeerCertificates[0].Subject.CommonName != "first" {
		t.Fatalf("https: %d %+v", res.StatusCode, res.TLS)
	}
	if _, err := client(cert, tls.VersionTLS11).Get("https://" + m.Addr() + "/healthz"); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	if res, err := http.Get("http://" + m.Addr() + "/healthz"); err == nil && res.StatusCode == 200 {
		t.Fatal("plain HTTP served on the TLS listener")
	}

	time.Sleep(1100 * time.Millisecond) // a new modification time, past the check interval
	_, _, second := selfSigned(t, dir, "second")
	waitFor(t, 10*time.Second, "the renewed certificate", func() bool {
		c := client(second, 0)
		c.Transport.(*http.Transport).DisableKeepAlives = true
		res, err := c.Get("https://" + m.Addr() + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.TLS.PeerCertificates[0].Subject.CommonName == "second"
	})
}

// TestForwardedAppendsAuthorised: on the shard write path an append
// received by an instance that does not own the stream's shard is
// forwarded with the client's token, and the owner checks it; the internal
// route refuses requests without a key or beyond the key's scopes.
func TestForwardedAppendsAuthorised(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	code, out, errOut := keysCmd(t, o.Keyspace, o.Hosts, "create", "--name=w", "--scope=append:user-*")
	if code != 0 {
		t.Fatalf("keys create: %s", errOut)
	}
	token := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	code, out, errOut = keysCmd(t, o.Keyspace, o.Hosts, "create", "--name=r", "--scope=read:*")
	if code != 0 {
		t.Fatalf("keys create: %s", errOut)
	}
	reader := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	a := MustRunMain(t, o, "--auth=required")
	b := MustRunMain(t, o, "--auth=required")
	post := func(base, path, body, bearer string, header ...string) (int, string) {
		return jsonRequest(t, "POST", "http://"+base+path, body, bearer, header...)
	}
	// Both instances take appends for every stream: whichever owns a shard,
	// the other forwards to it, with the token.
	for i := range 16 {
		for _, m := range []*Main{a, b} {
			status, body := post(m.Addr(), "/v1/streams/user-"+strconv.Itoa(i)+"/events", `{"events":[{"type":"t","data":1}]}`, token)
			if status != http.StatusCreated {
				t.Fatalf("append user-%d through %s: %d %s", i, m.Addr(), status, body)
			}
		}
	}
	// The internal route serves instances only: a request without an
	// instance's signature is refused whatever key it carries. A signed
	// one has each forwarded append authorised with its own client's key:
	// one in scope is committed, one beyond it or without a key is
	// refused, and nothing of those is written.
	item := func(stream, bearer string, n int) string {
		return fmt.Sprintf(`{"authorization":%q,"stream":%q,"expected_version":"any","events":[{"id":"0190a1b2-0000-7000-8000-%012d","client_id":true,"type":"t","data":1}]}`, bearer, stream, n)
	}
	internal := `{"appends":[` + item("user-99", "Bearer "+token, 1) + `,` + item("order-1", "Bearer "+token, 2) + `,` + item("user-98", "", 3) + `]}`
	for _, bearer := range []string{"", token} {
		if status, body := post(a.Addr(), "/internal/v1/appends", internal, bearer); status != http.StatusForbidden || !strings.Contains(body, "Eventlog-Peer-Signature") {
			t.Fatalf("internal route unsigned (bearer %q): %d %s", bearer, status, body)
		}
	}
	if !bytes.Equal(a.store.PeerKey(), b.store.PeerKey()) || len(a.store.PeerKey()) < 32 {
		t.Fatal("two instances of one keyspace derive different peer keys")
	}
	sig := httpapi.PeerSignature(b.store.PeerKey(), "POST", "/internal/v1/appends", []byte(internal), time.Now())
	status, body := post(a.Addr(), "/internal/v1/appends", internal, "", "Eventlog-Peer-Signature", sig)
	var answer struct {
		Results []struct {
			Result *struct {
				LastVersion int64 `json:"last_version"`
			} `json:"result"`
			Problem *struct {
				Code string `json:"code"`
			} `json:"problem"`
		} `json:"results"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &answer) != nil || len(answer.Results) != 3 {
		t.Fatalf("internal route with a key: %d %s", status, body)
	}
	// user-99's shard may be b's: then a answers not_owner, and nothing
	// is written either.
	if r := answer.Results[0]; !(r.Result != nil && r.Result.LastVersion == 1 || r.Problem != nil && r.Problem.Code == "not_owner") {
		t.Errorf("append in scope: %s", body)
	}
	if r := answer.Results[1]; r.Problem == nil || r.Problem.Code != "forbidden" {
		t.Errorf("append beyond the key's scopes: %s", body)
	}
	if r := answer.Results[2]; r.Problem == nil || r.Problem.Code != "unauthenticated" {
		t.Errorf("append without a key: %s", body)
	}
	for _, stream := range []string{"order-1", "user-98"} {
		req, _ := http.NewRequest("GET", "http://"+b.Addr()+"/v1/streams/"+stream, nil)
		req.Header.Set("Authorization", "Bearer "+reader)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s after a refused forwarded append: %d, want 404", stream, res.StatusCode)
		}
	}
}

// TestInternalListenersHostCheck: the --metrics-listen and --pprof-listen
// listeners, served without keys, refuse a Host outside the loopback names
// on a loopback address as the API listener does (a page that rebinds its
// name to 127.0.0.1 could otherwise read the metrics and profiles), and
// say nosniff and no-store.
func TestInternalListenersHostCheck(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	m := MustRunMain(t, o, "--metrics-listen=127.0.0.1:0", "--pprof-listen=127.0.0.1:0")
	for _, url := range []string{
		"http://" + m.MetricsAddr() + "/metrics",
		"http://" + m.MetricsAddr() + "/debug/pprof/",
		"http://" + m.PprofAddr() + "/debug/pprof/",
	} {
		for host, want := range map[string]int{"attacker.example": http.StatusMisdirectedRequest, "": 200, "localhost": 200} {
			req, _ := http.NewRequest("GET", url, nil)
			if host != "" {
				req.Host = host
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != want || (want != 200 && !bytes.Contains(b, []byte(`"code":"invalid_host"`))) {
				t.Errorf("%s with Host %q: %d %.200s, want %d", url, host, res.StatusCode, b, want)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s with Host %q: headers %v", url, host, res.Header)
			}
		}
	}
}

// jsonRequest sends a JSON body to url with bearer as its token (none if
// empty) and header's name, value pairs, and returns the status and body.
func jsonRequest(t *testing.T, method, url, body, bearer string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(rb)
}

// TestPprofNeedsLoopbackOrOptIn: pprof, served without a key, shows heap
// contents and goroutine stacks, so --pprof-listen on an address other
// hosts reach is refused unless --pprof-public says so.
func TestPprofNeedsLoopbackOrOptIn(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		err  bool
	}{
		{[]string{"--pprof-listen=127.0.0.1:6060"}, nil, false},
		{[]string{"--pprof-listen=localhost:6060"}, nil, false},
		{[]string{"--pprof-listen=0.0.0.0:6060"}, nil, true},
		{[]string{"--pprof-listen=:6060"}, nil, true},
		{[]string{"--pprof-listen=10.0.0.1:6060", "--auth=required"}, nil, true},
		{[]string{"--pprof-listen=10.0.0.1:6060", "--pprof-public"}, nil, false},
		{[]string{"--pprof-listen=10.0.0.1:6060"}, map[string]string{"EVENTLOG_PPROF_PUBLIC": "true"}, false},
		{[]string{"--metrics-listen=0.0.0.0:9100"}, nil, false}, // served, without pprof
	} {
		cfg := DefaultConfig()
		err := cfg.ParseFlags("server", c.args, env(c.env), io.Discard)
		if c.err && (err == nil || !strings.Contains(err.Error(), "--pprof-public")) {
			t.Errorf("%v %v: %v, want an error naming --pprof-public", c.args, c.env, err)
		}
		if !c.err && err != nil {
			t.Errorf("%v %v: %v", c.args, c.env, err)
		}
	}
}

// TestMetricsListenerPprofOptIn: a --metrics-listen on an address that is
// not loopback serves /metrics (Prometheus scrapes it from elsewhere) but
// not pprof, unless --pprof-public.
func TestMetricsListenerPprofOptIn(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	for _, public := range []bool{false, true} {
		args := []string{"--metrics-listen=0.0.0.0:0"}
		pprofWant := http.StatusNotFound
		if public {
			args = append(args, "--pprof-public")
			pprofWant = http.StatusOK
		}
		m := MustRunMain(t, o, args...)
		_, port, _ := net.SplitHostPort(m.MetricsAddr())
		base := "http://127.0.0.1:" + port
		for path, want := range map[string]int{"/metrics": http.StatusOK, "/debug/pprof/": pprofWant, "/debug/pprof/goroutine?debug=1": pprofWant} {
			res, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != want {
				t.Errorf("--pprof-public=%v: %s: %d, want %d", public, path, res.StatusCode, want)
			}
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
