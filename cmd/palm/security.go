package main

import (
	"fmt"
	"io"
	"net"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/reach"
)

// security holds the TLS and authentication flags, named as grpcurl's.
type security struct {
	files     palm.TLSFiles
	plaintext bool
	token     string
	// insecureTokens lets tokens travel without TLS.
	insecureTokens bool
}

// flags adds the flags of a verb that dials.
func (s *security) flags(pf *pflag.FlagSet) {
	pf.StringVar(&s.files.CACert, "cacert", "", "file of the CA certificates that verify the server (TLS; default: the system's roots when another TLS flag is given)")
	pf.StringVar(&s.files.Cert, "cert", "", "file of the client certificate, for servers that require one (mutual TLS)")
	pf.StringVar(&s.files.Key, "key", "", "file of the client certificate's private key")
	pf.StringVar(&s.files.ServerName, "servername", "", "name the server's certificate must be valid for (default: the host of --address)")
	pf.BoolVar(&s.files.Insecure, "insecure", false, "TLS without verifying the server's certificate (for tests only)")
	pf.BoolVar(&s.plaintext, "plaintext", false, "talk without TLS; needed for an address that is not on this machine's loopback")
	pf.StringVar(&s.token, "token", "", "bearer token to send, for servers that require one (needs TLS, or --insecure-tokens)")
	pf.BoolVar(&s.insecureTokens, "insecure-tokens", false, "let bearer tokens travel without TLS: send --token, or accept --tokens, in the clear (for one machine or tests only)")
}

// serveFlags adds the flags of a verb that serves, and with dials those
// of one that also dials its upstreams (a pipeline, a sink, a hub).
func (s *security) serveFlags(f *pflag.FlagSet, dials bool) {
	ca := "file of the CA certificates that verify client certificates (with --client-auth)"
	if dials {
		ca += " and the upstreams' certificates"
	}
	f.StringVar(&s.files.CACert, "cacert", "", ca)
	f.StringVar(&s.files.Cert, "cert", "", "file of the component's certificate: serve with TLS")
	f.StringVar(&s.files.Key, "key", "", "file of the certificate's private key")
	f.BoolVar(&s.plaintext, "plaintext", false, "serve without TLS; needed to listen on an address that is not on this machine's loopback without TLS")
	f.BoolVar(&s.insecureTokens, "insecure-tokens", false, "accept --tokens (and send --token upstream) without TLS, in the clear (for one machine or tests only)")
	if dials {
		f.StringVar(&s.files.ServerName, "servername", "", "name the upstreams' certificates must be valid for (default: the host of each --from address)")
		f.BoolVar(&s.files.Insecure, "insecure", false, "TLS to the upstreams without verifying their certificates (for tests only)")
		f.StringVar(&s.token, "token", "", "bearer token to send to the upstreams, for those that require one (needs TLS, or --insecure-tokens)")
	}
}

// options returns the palm options of the flags for talking to address.
// Without TLS flags, plaintext is used on the loopback interface or with
// --plaintext, and refused otherwise.
func (s *security) options(address string) ([]palm.Option, error) {
	f := s.files
	tlsWanted := f.CACert != "" || f.Cert != "" || f.Key != "" || f.ServerName != "" || f.Insecure
	opts, err := s.tls(tlsWanted, fmt.Sprintf("talk to %s", address), address, "give --cacert (and --cert, --key) for TLS")
	if err != nil {
		return nil, err
	}
	if s.insecureTokens {
		opts = append(opts, palm.WithInsecureTokens())
	}
	if s.token != "" {
		if !tlsWanted && !s.insecureTokens {
			return nil, usageError{fmt.Errorf("--token needs TLS: a bearer token is not sent in plaintext (give --cacert, or --insecure-tokens to send it in the clear)")}
		}
		opts = append(opts, palm.WithToken(s.token))
	}
	return opts, nil
}

// tls returns WithTLS from the files when TLS is wanted, nothing for
// plaintext to or on a loopback address or with --plaintext, and a usage
// error otherwise; doing says what the plaintext would be for.
func (s *security) tls(wanted bool, doing, address, hint string) ([]palm.Option, error) {
	switch {
	case wanted && s.plaintext:
		return nil, usageError{fmt.Errorf("--plaintext excludes the TLS flags (--cacert, --cert, --key, --servername, --insecure)")}
	case wanted:
		cfg, err := s.files.Config()
		if err != nil {
			return nil, usageError{err}
		}
		return []palm.Option{palm.WithTLS(cfg)}, nil
	case !s.plaintext && !loopback(address):
		return nil, usageError{fmt.Errorf("refusing to %s in plaintext: %s, or --plaintext", doing, hint)}
	}
	return nil, nil
}

// loopback reports whether address is on this machine's loopback
// interface.
func loopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// conn opens a raw gRPC connection to the component at args[0], or at
// --address without one, with the TLS and token flags. Its calls fail at
// once when nothing answers, or wait for the component with --wait, as a
// Client's do; "waiting for" goes to stderr.
func (c *common) conn(args []string, stderr io.Writer) (*grpc.ClientConn, error) {
	address := c.address
	if len(args) == 1 {
		address = args[0]
	}
	opts, err := c.security.options(address)
	if err != nil {
		return nil, err
	}
	cfg := config.New(opts)
	w := &reach.Watch{Address: address, TLS: cfg.TLS, Wait: c.wait, Bound: client.FirstConnectTimeout,
		Log: hclog.New(&hclog.LoggerOptions{Output: stderr, Level: hclog.Info})}
	dial, err := palm.DialOptions(append(opts, palm.WithDialOptions(w.DialOptions()...))...)
	if err != nil {
		return nil, usageError{err}
	}
	conn, err := grpc.NewClient(address, dial...)
	if err != nil {
		return nil, usageError{err}
	}
	return conn, nil
}
