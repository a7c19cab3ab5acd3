package worker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/worker"
)

// selfSigned mints a certificate for the name "master" and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "master"},
		DNSNames:              []string{"master"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	m := startMaster(t, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	l, _ := testLogger(t)
	w, err := worker.New("w1", palmtest.Target,
		palm.WithTLS(&tls.Config{RootCAs: pool, ServerName: "master"}),
		palm.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return m.lis.DialContext(ctx)
		})),
		palm.WithLogger(l))
	if err != nil {
		t.Fatal(err)
	}
	w.HandleFunc("upper", upper)
	start(t, w)
	s := m.next(t)
	s.send(task(1, "master.upper", "secret"))
	s.waitFor(t, "a done", func() bool { return len(s.dones) == 1 })
	s.locked(func() {
		if got := string(s.results[1][0].GetPayload()); got != "SECRET" {
			t.Errorf("result %q; want SECRET", got)
		}
	})
}
