package server

import (
	"crypto/sha256"
	"crypto/tls"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm/internal/config"
)

// HTTPAuth returns the check of an HTTP request that sends messages, with
// the tokens and identities of cfg as gRPC calls are checked: a bearer
// token it knows or a verified client certificate it names, allowing
// UseGateway. It returns nil when cfg asks for no authentication.
func HTTPAuth(cfg *config.Config) func(r *http.Request) error {
	if len(cfg.Tokens) == 0 && len(cfg.Identities) == 0 {
		return nil
	}
	return func(r *http.Request) error {
		granted, who := uint8(0), false
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, token, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "bearer") {
				return status.Error(codes.Unauthenticated, "the Authorization header must be 'Bearer <token>'")
			}
			p, ok := cfg.Tokens[sha256.Sum256([]byte(token))]
			if !ok {
				return status.Error(codes.Unauthenticated, "the bearer token is not known to this server")
			}
			granted, who = granted|p, true
		}
		for _, name := range httpCertNames(r.TLS) {
			if p, ok := cfg.Identities[name]; ok {
				granted, who = granted|p, true
			}
		}
		switch {
		case !who:
			return status.Error(codes.Unauthenticated, "this server requires authentication: a bearer token (Authorization: Bearer ...) or a client certificate it knows")
		case granted&useGateway != useGateway:
			return status.Error(codes.PermissionDenied, "the caller's token or certificate does not allow sending messages (UseGateway)")
		}
		return nil
	}
}

// httpCertNames are the names of a request's verified client certificate.
func httpCertNames(st *tls.ConnectionState) []string {
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil
	}
	leaf := st.VerifiedChains[0][0]
	return append([]string{leaf.Subject.CommonName}, leaf.DNSNames...)
}
