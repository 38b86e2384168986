package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// caFile writes a self-signed CA certificate and returns its path.
func caFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// --tls-ca asks for TLS; a plain-text URL would ignore it and send
// everything, password included, in the clear.
func TestTLSCAWantsATLSURL(t *testing.T) {
	url, _ := seeded(t, "api.github.com")
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")
	ca := caFile(t)
	for _, u := range []string{
		url,
		"redis://" + addr + "?addr=" + addr,
		"redis+sentinel://" + addr + "/mymaster",
	} {
		for _, args := range [][]string{
			{"keys", "--redis", u, "--tls-ca", ca},
			{"status", "api.github.com", "--tls-ca", ca, "--redis", u},
			{"reset", "--yes", "--tls-ca", ca, "--redis", u, "api.github.com"},
		} {
			code, out, errOut := runCmd(t, args...)
			if code != 2 || !strings.Contains(errOut, "--tls-ca") || !strings.Contains(errOut, "rediss://") {
				t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s\nwant exit 2 and an error saying to use rediss://", args, code, out, errOut)
			}
		}
	}
	// The plain URL alone still works.
	if code, _, errOut := runCmd(t, "keys", "--redis", url); code != 0 {
		t.Fatalf("keys without --tls-ca: exit %d %s", code, errOut)
	}
}
