package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm/internal/caller"
	"github.com/gopalm/palm/internal/config"
)

// Permission bits, as palm.Permission defines them.
const (
	useGateway   = caller.UseGateway
	useCache     = caller.UseCache
	useDispatch  = caller.UseDispatch
	useSubscribe = caller.UseSubscribe
	useProbes    = caller.UseProbes
)

// needs maps a service to the permission its calls need, and names it for
// the person denied.
var needs = map[string]struct {
	perm uint8
	what string
}{
	"palm.v1.GatewayService":                   {useGateway, "sending messages (GatewayService)"},
	"palm.v1.CacheService":                     {useCache, "the cache (CacheService)"},
	"palm.v1.DispatchService":                  {useDispatch, "taking tasks as a worker (DispatchService)"},
	"palm.v1.PublisherService":                 {useSubscribe, "subscribing (PublisherService)"},
	"palm.v1.InfoService":                      {useProbes, "component information (InfoService)"},
	"grpc.health.v1.Health":                    {useProbes, "health checks"},
	"grpc.reflection.v1.ServerReflection":      {useProbes, "reflection"},
	"grpc.reflection.v1alpha.ServerReflection": {useProbes, "reflection"},
}

// authFunc checks the caller of every call against cfg's tokens and
// identities, and has lim count, log and limit the failures; nil when the
// component requires no authentication.
func authFunc(cfg *config.Config, lim *failures) auth.AuthFunc {
	if len(cfg.Tokens) == 0 && len(cfg.Identities) == 0 {
		return nil
	}
	return func(ctx context.Context) (context.Context, error) {
		method, _ := grpc.Method(ctx)
		service := strings.TrimPrefix(method, "/")
		if i := strings.LastIndexByte(service, '/'); i >= 0 {
			service = service[:i]
		}
		need, known := needs[service]
		if !known {
			need.perm, need.what = 0xff, service // only a caller allowed everything
		}
		if need.perm == useProbes && !cfg.ClosedProbes {
			return ctx, nil
		}
		from := callerOf(ctx)
		if err := lim.admit(from); err != nil {
			return nil, err
		}
		granted, who, id := uint8(0), false, ""
		if token, err := auth.AuthFromMD(ctx, "bearer"); err == nil {
			sum := sha256.Sum256([]byte(token))
			p, ok := cfg.Tokens[sum]
			if !ok {
				return nil, lim.failed(from, status.Error(codes.Unauthenticated, "the bearer token is not known to this server"))
			}
			granted, who, id = granted|p, true, "token:"+hex.EncodeToString(sum[:8])
		}
		for _, name := range certNames(ctx) {
			if p, ok := cfg.Identities[name]; ok {
				if id == "" {
					id = "cert:" + name
				}
				granted, who = granted|p, true
			}
		}
		switch {
		case !who:
			return nil, lim.failed(from, status.Error(codes.Unauthenticated, "this server requires authentication: a bearer token (authorization: Bearer ...) or a client certificate it knows"))
		case granted&need.perm != need.perm:
			return nil, status.Errorf(codes.PermissionDenied, "the caller's token or certificate does not allow %s", need.what)
		}
		return caller.With(ctx, caller.Caller{ID: id, Perm: granted}), nil
	}
}

// certNames are the names of the verified client certificate of the call:
// its common name and DNS names.
func certNames(ctx context.Context) []string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	return httpCertNames(&info.State)
}
