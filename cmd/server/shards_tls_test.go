package main

import (
	"crypto"
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
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// testCA is a certificate authority for tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	file string // its certificate, PEM
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "eventlog test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, "ca.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a server certificate for 127.0.0.1 signed by ca (followed
// by ca's own certificate when chain is set) and its key.
func (ca *testCA) issue(t *testing.T, dir, name string, chain bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	if chain {
		f, err := os.OpenFile(certFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
		f.Close()
	}
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestShardsForwardingTLS: two servers on the shard-log path, both serving
// HTTPS, forward appends (and flushes before reads) to each other over
// TLS, verifying each other's certificate: one trusts the CA given in
// --peer-tls-ca-file, the other the CA in its own --tls-cert-file chain
// (the default). Each advertises an https:// address.
func TestShardsForwardingTLS(t *testing.T) {
	o := cassandratest.Options(t)
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certA, keyA := ca.issue(t, dir, "a", false)
	certB, keyB := ca.issue(t, dir, "b", true)
	// 16 shards: both instances own some (all 16 going to one is 1 in 2^15).
	// A minute's fill delay: a read through the instance that does not own
	// a stream's shard needs the owner to write it first (a forwarded flush).
	flags := []string{"--shard-lease-ttl=1s", "--fill-delay=1m"}
	a := MustRunMain(t, o, append(flags, "--migrate", "--shards=16", "--tls-cert-file="+certA, "--tls-key-file="+keyA, "--peer-tls-ca-file="+ca.file)...)
	b := MustRunMain(t, o, append(flags, "--tls-cert-file="+certB, "--tls-key-file="+keyB)...)

	owned := func(m *Main) int { return len(m.store.Owned()) }
	last, since := "", time.Now()
	waitFor(t, time.Minute, "both instances to own shards, holding still for 2 s", func() bool {
		na, nb := owned(a), owned(b)
		if now := fmt.Sprint(na, nb); now != last {
			last, since = now, time.Now()
		}
		return na > 0 && nb > 0 && na+nb == 16 && time.Since(since) > 2*time.Second
	})

	var addresses []string
	sess := cassandratest.Session(t, o)
	iter := sess.Query(`SELECT address FROM shards`).Iter()
	for addr := ""; iter.Scan(&addr); {
		addresses = append(addresses, addr)
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range addresses {
		if addr != "https://"+a.Addr() && addr != "https://"+b.Addr() {
			t.Fatalf("a shard's owner advertises %q, want https://%s or https://%s", addr, a.Addr(), b.Addr())
		}
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	bases := []string{"https://" + a.Addr(), "https://" + b.Addr()}
	const streams = 16
	// Every stream appended through both instances: for each stream one of
	// the two is not the owner and forwards.
	for s := range streams {
		for i, base := range bases {
			res, err := client.Post(fmt.Sprintf("%s/v1/streams/tls-%d/events", base, s), "application/json",
				strings.NewReader(fmt.Sprintf(`{"expected_version":%d,"events":[{"type":"T","data":{}}]}`, i)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("append to tls-%d through %s: %d %s", s, base, res.StatusCode, body)
			}
		}
	}
	// Read through both: the non-owner has the owner flush first.
	for s := range streams {
		for _, base := range bases {
			res, err := client.Get(fmt.Sprintf("%s/v1/streams/tls-%d/events", base, s))
			if err != nil {
				t.Fatal(err)
			}
			var page struct{ Events []struct{ Version int64 } }
			err = json.NewDecoder(res.Body).Decode(&page)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK || len(page.Events) != 2 || page.Events[1].Version != 2 {
				t.Fatalf("read tls-%d through %s: %d %v %+v", s, base, res.StatusCode, err, page)
			}
		}
	}
}
