package cassandra

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// writePair writes a self-signed certificate and its key as PEM files.
func writePair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestClusterSecurityOptions: credentials, TLS and the local DC reach the
// session configuration; TLS verifies the nodes (TLS 1.2+), and bad files
// are refused before connecting.
func TestClusterSecurityOptions(t *testing.T) {
	dir := t.TempDir()
	ca, _ := writePair(t, dir, "ca")
	cert, key := writePair(t, dir, "client")
	o := DefaultOptions()
	o.Username, o.Password, o.LocalDC = "eventlog", "s3cret", "dc1"
	o.TLS = &TLSOptions{CAFile: ca, CertFile: cert, KeyFile: key, ServerName: "cassandra.internal"}
	c, err := newCluster(&o, "ks")
	if err != nil {
		t.Fatal(err)
	}
	if pa, ok := c.Authenticator.(gocql.PasswordAuthenticator); !ok || pa.Username != "eventlog" || pa.Password != "s3cret" {
		t.Fatalf("authenticator %#v", c.Authenticator)
	}
	if c.SslOpts == nil || !c.SslOpts.EnableHostVerification || c.SslOpts.Config.InsecureSkipVerify ||
		c.SslOpts.Config.MinVersion != tls.VersionTLS12 || c.SslOpts.Config.ServerName != "cassandra.internal" ||
		c.SslOpts.Config.RootCAs == nil || len(c.SslOpts.Config.Certificates) != 1 {
		t.Fatalf("TLS %+v", c.SslOpts)
	}
	plain := DefaultOptions()
	if c, err := newCluster(&plain, "ks"); err != nil || c.SslOpts != nil || c.Authenticator != nil {
		t.Fatalf("defaults: %v %+v %+v", err, c.SslOpts, c.Authenticator)
	}
	for name, bad := range map[string]*TLSOptions{
		"MissingCA":    {CAFile: filepath.Join(dir, "none.pem")},
		"NotPEM":       {CAFile: key + ".nope"},
		"HalfPair":     {CertFile: cert},
		"PairMismatch": {CertFile: cert, KeyFile: filepath.Join(dir, "ca.key") + "x"},
	} {
		o := DefaultOptions()
		o.TLS = bad
		if _, err := newCluster(&o, "ks"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("junk"), 0o600)
	o = DefaultOptions()
	o.TLS = &TLSOptions{CAFile: filepath.Join(dir, "junk.pem")}
	if _, err := newCluster(&o, "ks"); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Fatalf("junk CA: %v", err)
	}
}

// The driver's write coalescing is off: it held each request on an idle
// connection for a timer that fired after about a millisecond
// (session.go), and bought nothing under load.
func TestClusterSendsAtOnce(t *testing.T) {
	o := DefaultOptions()
	c, err := newCluster(&o, "ks")
	if err != nil {
		t.Fatal(err)
	}
	if c.WriteCoalesceWaitTime != 0 {
		t.Fatalf("write coalescing waits %v", c.WriteCoalesceWaitTime)
	}
}

// TestCloseWithinGivesUp: a close that blocks for good (gocql's, called
// while the driver reconnects its control connection) does not hold
// shutdown: closeWithin returns false at its limit; one that returns is
// waited for.
func TestCloseWithinGivesUp(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	if closeWithin(func() { <-block }, 10*time.Millisecond) {
		t.Fatal("closeWithin reported a blocked close done")
	}
	closed := false
	if !closeWithin(func() { closed = true }, time.Minute) || !closed {
		t.Fatal("closeWithin did not wait for a close that returns")
	}
}
