// Package server is the plumbing every palm listener shares: the gRPC server
// with palm's limits, keepalive policy and interceptor chain (recovery, then
// logging through hclog), the health and reflection services, and the
// serve-then-stop-within-a-bound lifecycle.
package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/gopalm/palm/internal/metrics"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/kv"
)

// Server is a gRPC server dressed the palm way.
type Server struct {
	GRPC    *grpc.Server
	Health  *health.Server
	logger  hclog.Logger
	cfg     *config.Config
	serving []string // services health reports SERVING once Serve starts

	// Metrics, when the component wants them: the gRPC server metrics its
	// interceptors count, and the component's own (Observe).
	prom   *grpcprom.ServerMetrics
	name   string
	source metrics.Source

	auth *failures // failed authentications, counted and limited
}

// New builds the gRPC server for a component. Register its services with
// Register (or RegisterCache), then call Serve or ServeWith. A service
// registered on s.GRPC directly is served but not reported by health.
func New(cfg *config.Config, logger hclog.Logger) *Server {
	rpcLog := logging.LoggerFunc(func(_ context.Context, lvl logging.Level, msg string, fields ...any) {
		logger.Log(hclogLevel(lvl), msg, fields...)
	})
	opts := []grpc.ServerOption{
		experimental.BufferPool(config.BufferPool),
		grpc.ForceServerCodecV2(config.Codec),
		grpc.MaxRecvMsgSize(cfg.MaxMessageSize + config.Slack),
		grpc.MaxSendMsgSize(cfg.MaxMessageSize + config.Slack),
		// Accept the keepalive pings of palm's dialers and of the common
		// gRPC runtimes, which ping no more often than every 10 s.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: min(config.MinPingInterval, cfg.KeepaliveTime), PermitWithoutStream: true}),
		// Notice a peer that vanished without closing the connection.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout}),
		// Logging outside recovery, so that a recovered panic is logged
		// as the Internal status it became.
		grpc.ChainUnaryInterceptor(
			logging.UnaryServerInterceptor(rpcLog, logging.WithLogOnEvents(logging.FinishCall), logging.WithLevels(codeLevel)),
			recovery.UnaryServerInterceptor(recovery.WithRecoveryHandler(panicHandler(logger))),
		),
		grpc.ChainStreamInterceptor(
			logging.StreamServerInterceptor(rpcLog, logging.WithLogOnEvents(logging.StartCall, logging.FinishCall), logging.WithLevels(codeLevel)),
			recovery.StreamServerInterceptor(recovery.WithRecoveryHandler(panicHandler(logger))),
		),
	}
	if cfg.Window > 0 {
		opts = append(opts, grpc.StaticStreamWindowSize(int32(cfg.Window)), grpc.StaticConnWindowSize(int32(cfg.Window*config.ConnWindows)))
	}
	var prom *grpcprom.ServerMetrics
	if cfg.MetricsWanted() {
		// Counted before authentication, so refused calls show too.
		prom = grpcprom.NewServerMetrics()
		opts = append(opts,
			grpc.ChainUnaryInterceptor(prom.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(prom.StreamServerInterceptor()))
	}
	lim := newFailures(logger, time.Now)
	if check := authFunc(cfg, lim); check != nil {
		opts = append(opts,
			grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(check)),
			grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(check)))
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	opts = append(opts, cfg.ServerOptions...)
	g := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	return &Server{GRPC: g, Health: h, logger: logger, cfg: cfg, prom: prom, auth: lim}
}

func panicHandler(logger hclog.Logger) recovery.RecoveryHandlerFunc {
	return func(p any) error {
		logger.Error("panic while serving a call", "panic", p, "stack", string(debug.Stack()))
		return status.Errorf(codes.Internal, "the server failed while handling the call: %v", p)
	}
}

// codeLevel logs routine outcomes, including the client's own mistakes, at
// Debug, and the server's failures at Warn.
func codeLevel(c codes.Code) logging.Level {
	switch c {
	case codes.Internal, codes.DataLoss, codes.Unimplemented:
		return logging.LevelWarn
	}
	return logging.LevelDebug
}

func hclogLevel(l logging.Level) hclog.Level {
	switch {
	case l <= logging.LevelDebug:
		return hclog.Debug
	case l <= logging.LevelInfo:
		return hclog.Info
	case l <= logging.LevelWarn:
		return hclog.Warn
	}
	return hclog.Error
}

// Register serves impl as the service desc describes; health reports it
// SERVING from the moment Serve starts until the stop begins.
func (s *Server) Register(desc *grpc.ServiceDesc, impl any) {
	s.GRPC.RegisterService(desc, impl)
	s.serving = append(s.serving, desc.ServiceName)
}

// Unreported serves impl as desc describes, without health reporting it.
func (s *Server) Unreported(desc *grpc.ServiceDesc, impl any) {
	s.GRPC.RegisterService(desc, impl)
}

// RegisterService is Register, for a grpc.ServiceRegistrar.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) { s.Register(desc, impl) }

// RegisterCache serves store as the component's CacheService, with the
// component's value size limit and logger.
func (s *Server) RegisterCache(store kv.Store) {
	s.Register(&palmv1.CacheService_ServiceDesc, kv.NewService(store, kv.WithMaxValueSize(s.cfg.MaxMessageSize), kv.WithLogger(s.logger)))
}

// Observe names the component and where its metrics come from; they are
// registered while it serves, when metrics are wanted (palm.WithMetrics,
// WithMetricsAddress, WithMetricsListener).
//
// It also registers palm.v1.InfoService, which describes the component from
// src (`palm info`).
func (s *Server) Observe(name string, src metrics.Source) {
	if len(s.cfg.Tokens) > 0 || len(s.cfg.Identities) > 0 {
		src.Stats = append(src.Stats,
			metrics.Stat{Name: "auth_failures", Help: "Calls that failed to authenticate: an unknown bearer token, or no known credentials.", Counter: true, Read: s.auth.Failed},
			metrics.Stat{Name: "auth_throttled", Help: "Calls refused unchecked (ResourceExhausted) because their address or connection failed to authenticate too often.", Counter: true, Read: s.auth.Refused})
	}
	s.name, s.source = name, src
	s.Register(&palmv1.InfoService_ServiceDesc, info{s: s})
}

// startMetrics registers the component's metrics and serves /metrics when
// asked to, until ctx ends; the returned function undoes it.
func (s *Server) startMetrics(ctx context.Context) (func(), error) {
	if s.prom == nil {
		return func() {}, nil
	}
	s.prom.InitializeMetrics(s.GRPC)
	reg := s.cfg.Metrics
	var gatherer prometheus.Gatherer
	if reg == nil {
		own := metrics.NewRegistry()
		reg, gatherer = own, own
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		gatherer = g
	}
	set, err := metrics.Register(reg, s.name, s.source, s.prom)
	if err != nil {
		return nil, err
	}
	lis := s.cfg.MetricsListener
	if lis == nil && s.cfg.MetricsAddress != "" {
		if lis, err = net.Listen("tcp", s.cfg.MetricsAddress); err != nil {
			set.Unregister()
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	if lis == nil {
		return set.Unregister, nil
	}
	if gatherer == nil {
		lis.Close()
		set.Unregister()
		return nil, errors.New("metrics: the registry given with WithMetrics cannot be read (it is not a prometheus.Gatherer), so it cannot be served")
	}
	httpCtx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := metrics.Serve(httpCtx, lis, gatherer, s.logger); err != nil {
			s.logger.Error("serving metrics failed", "error", err)
		}
	}()
	return func() { stop(); <-served; set.Unregister() }, nil
}

// Serve serves on lis until ctx ends or serving fails. Then it reports
// NOT_SERVING, calls drain (bounded by the stop timeout) so the component
// can finish what it holds, stops gracefully within what is left of the
// bound, and force-stops after it. It returns nil after a stop caused by ctx.
func (s *Server) Serve(ctx context.Context, lis net.Listener, drain func(context.Context) error) error {
	stopMetrics, err := s.startMetrics(context.Background())
	if err != nil {
		lis.Close()
		return err
	}
	defer stopMetrics()
	return s.serve(ctx, lis, drain)
}

func (s *Server) serve(ctx context.Context, lis net.Listener, drain func(context.Context) error) error {
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range s.serving {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	served := make(chan error, 1)
	go func() { served <- s.GRPC.Serve(lis) }()
	var err error
	select {
	case err = <-served:
		// Serving failed on its own: stop everything.
		s.GRPC.Stop()
		return err
	case <-ctx.Done():
	}
	s.logger.Info("stopping", "timeout", s.cfg.StopTimeout)
	s.Health.Shutdown()
	bound, cancel := context.WithTimeout(context.Background(), s.cfg.StopTimeout)
	defer cancel()
	if drain != nil {
		if err := drain(bound); err != nil {
			s.logger.Warn("stopped before finishing every message in flight", "error", err)
		}
	}
	stopped := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-bound.Done():
		s.logger.Warn("graceful stop timed out; closing the remaining connections")
		s.GRPC.Stop()
		<-stopped
	}
	if err = <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	s.logger.Info("stopped")
	return nil
}

// Runner is what runs beside the gRPC server: a component's router.
type Runner interface {
	Run(ctx context.Context) error
}

// ServeWith runs r, then serves on lis as Serve does; once serving has
// stopped it stops r and waits for it with what is left of the stop
// timeout (and a tenth of a second at least, for a runner that respects
// its context to return): a user function that ignores its context cannot
// be stopped from outside, and is left behind rather than allowed to hold
// the stop past its bound.
func (s *Server) ServeWith(ctx context.Context, lis net.Listener, r Runner, drain func(context.Context) error) error {
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- r.Run(runCtx) }()
	var stopBy atomic.Int64 // when the stop timeout ends, in Unix nanoseconds
	unwatch := context.AfterFunc(ctx, func() { stopBy.Store(time.Now().Add(s.cfg.StopTimeout).UnixNano()) })
	defer unwatch()
	s.logger.Info("serving", "address", lis.Addr().String(), "tls", s.cfg.TLS != nil)
	if s.cfg.TLS == nil && len(s.cfg.Tokens) > 0 {
		s.logger.Warn("accepting bearer tokens without TLS (WithInsecureTokens): anyone who sees the traffic can read them and use them; use palm.WithTLS (see docs/security.md)", "address", lis.Addr().String())
	}
	if s.cfg.TLS == nil && !onLoopback(lis.Addr()) {
		s.logger.Warn("serving in plaintext beyond this machine: anyone on the network can read and send messages; use palm.WithTLS (see docs/security.md)", "address", lis.Addr().String())
	}
	err := s.Serve(ctx, lis, drain)
	stop()
	left := s.cfg.StopTimeout
	if by := stopBy.Load(); by != 0 {
		left = time.Until(time.Unix(0, by))
	}
	wait := time.NewTimer(max(left, 100*time.Millisecond))
	defer wait.Stop()
	select {
	case rerr := <-ran:
		if err == nil {
			err = rerr
		}
	case <-wait.C:
		s.logger.Warn("stopped with a function call still running: the function ignores its context", "timeout", s.cfg.StopTimeout)
	}
	return err
}

// onLoopback reports whether addr is on the loopback interface (or is not
// a network address at all, such as an in-memory listener's).
func onLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return !ok || tcp.IP.IsLoopback()
}
