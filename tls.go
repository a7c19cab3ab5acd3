package palm

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles names the PEM files of a component's TLS, with the names of
// grpcurl's flags. Config builds the tls.Config for WithTLS, good for both
// sides of a connection: a server serves with it, and a client, a worker
// or a stage subscribing upstream dials with it. The files are read again
// whenever they change on disk, so certificates rotate without a restart:
// each new connection uses what the files hold then, while connections
// already open keep theirs. A file being replaced (a certificate written
// before its key) is read again once it is whole; meanwhile the last good
// one serves.
type TLSFiles struct {
	// CACert is the file of the CA certificates that verify the peer
	// (--cacert): the server, when dialling (default: the system's roots),
	// and client certificates, when serving with ClientAuth.
	CACert string
	// Cert and Key are the files of this side's certificate chain and
	// private key (--cert, --key). A server needs them; a dialer sends them
	// when the server asks for a client certificate (mutual TLS).
	Cert, Key string
	// ServerName is the name the server's certificate must be valid for
	// (--servername). Default: the host of the address dialled.
	ServerName string
	// Insecure makes a dialer accept any server certificate (--insecure):
	// the connection is encrypted but the server unverified. For tests.
	Insecure bool
	// ClientAuth makes a server require a client certificate signed by a
	// CA of CACert (mutual TLS).
	ClientAuth bool
}

// Config returns the tls.Config the files describe, for WithTLS. It fails
// when a file cannot be read or parsed, or when the files do not make a
// whole: a certificate without its key, ClientAuth without CACert.
func (f TLSFiles) Config() (*tls.Config, error) {
	switch {
	case (f.Cert == "") != (f.Key == ""):
		return nil, errors.New("palm: TLS: a certificate needs its key, and a key its certificate (Cert and Key)")
	case f.ClientAuth && f.CACert == "":
		return nil, errors.New("palm: TLS: verifying client certificates (ClientAuth) needs the CA that signs them (CACert)")
	case f.ClientAuth && f.Cert == "":
		return nil, errors.New("palm: TLS: a server needs its certificate and key (Cert and Key)")
	}
	var (
		pair *watchedPair
		ca   *watchedPool
	)
	if f.Cert != "" {
		pair = &watchedPair{cert: f.Cert, key: f.Key}
		if _, err := pair.get(); err != nil {
			return nil, err
		}
	}
	if f.CACert != "" {
		ca = &watchedPool{file: f.CACert}
		if _, err := ca.get(); err != nil {
			return nil, err
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}

	// Dialling: the client certificate, and the server's verification.
	if pair != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair.get() }
	}
	switch {
	case f.Insecure:
		cfg.InsecureSkipVerify = true
	case ca != nil:
		// The CA file may change: verify against what it holds now, as
		// crypto/tls would against a fixed RootCAs.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			pool, err := ca.get()
			if err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("palm: TLS: the server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: pool, Intermediates: inter})
			return err
		}
	}

	// Serving: the certificate and, with ClientAuth, the client's
	// verification, from the files as they are now. A config is built
	// again only when a file changed, so that sessions resume.
	if pair != nil {
		var (
			mu     sync.Mutex
			built  *tls.Config
			byCert *tls.Certificate
			byPool *x509.CertPool
		)
		cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := pair.get()
			if err != nil {
				return nil, err
			}
			var pool *x509.CertPool
			if f.ClientAuth {
				if pool, err = ca.get(); err != nil {
					return nil, err
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if built == nil || c != byCert || pool != byPool {
				built = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}, Certificates: []tls.Certificate{*c}}
				if f.ClientAuth {
					built.ClientAuth, built.ClientCAs = tls.RequireAndVerifyClientCert, pool
				}
				byCert, byPool = c, pool
			}
			return built, nil
		}
	}
	return cfg, nil
}

// fileStamp tells whether a file changed since it was last read.
type fileStamp struct {
	size int64
	mod  time.Time
}

func stamp(name string) (fileStamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{}, fmt.Errorf("palm: TLS: %w", err)
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

// watchedPair is a certificate and key read from files, read again when
// either changes.
type watchedPair struct {
	cert, key string

	mu     sync.Mutex
	stamps [2]fileStamp
	loaded *tls.Certificate
}

func (w *watchedPair) get() (*tls.Certificate, error) {
	cs, err := stamp(w.cert)
	if err != nil {
		return w.fallback(err)
	}
	ks, err := stamp(w.key)
	if err != nil {
		return w.fallback(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.loaded != nil && w.stamps == [2]fileStamp{cs, ks} {
		return w.loaded, nil
	}
	c, err := tls.LoadX509KeyPair(w.cert, w.key)
	if err != nil {
		// Half-written during a rotation, or wrong: keep serving with the
		// last good pair, if any.
		if w.loaded != nil {
			return w.loaded, nil
		}
		return nil, fmt.Errorf("palm: TLS: certificate %s and key %s: %w", w.cert, w.key, err)
	}
	w.loaded, w.stamps = &c, [2]fileStamp{cs, ks}
	return w.loaded, nil
}

// fallback keeps the last good pair when the files are briefly missing.
func (w *watchedPair) fallback(err error) (*tls.Certificate, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.loaded != nil {
		return w.loaded, nil
	}
	return nil, err
}

// watchedPool is a pool of CA certificates read from a file, read again
// when it changes.
type watchedPool struct {
	file string

	mu     sync.Mutex
	stamp  fileStamp
	loaded *x509.CertPool
}

func (w *watchedPool) get() (*x509.CertPool, error) {
	s, err := stamp(w.file)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.loaded != nil {
			return w.loaded, nil
		}
		return nil, err
	}
	if w.loaded != nil && w.stamp == s {
		return w.loaded, nil
	}
	pem, err := os.ReadFile(w.file)
	if err != nil {
		return nil, fmt.Errorf("palm: TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		if w.loaded != nil {
			return w.loaded, nil
		}
		return nil, fmt.Errorf("palm: TLS: %s holds no PEM certificate", w.file)
	}
	w.loaded, w.stamp = pool, s
	return pool, nil
}
