// Package config holds the settings every palm component shares and the
// option interfaces of each role (option.go), which the compiler checks:
// palm.Option is Shared, and each role's package declares its option type
// from one of them. It is not API.
package config

import (
	"net"

	"context"
	"crypto/tls"
	"fmt"
	"github.com/gopalm/palm/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"math/bits"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
)

// DefaultMaxMessageSize is the largest gRPC message a component accepts or
// sends unless told otherwise: 4 MiB, gRPC's own default.
const DefaultMaxMessageSize = 4 << 20

// DefaultStopTimeout bounds a server's graceful stop.
const DefaultStopTimeout = 10 * time.Second

// Default keepalive: ping a connection silent for DefaultKeepaliveTime,
// close it when the ping is not answered within DefaultKeepaliveTimeout.
const (
	DefaultKeepaliveTime    = 30 * time.Second
	DefaultKeepaliveTimeout = 10 * time.Second
)

// DefaultSlowSubscriberTimeout is how long a publisher waits for a
// subscriber that does not read before it cuts it.
const DefaultSlowSubscriberTimeout = 10 * time.Second

// MinPingInterval is the shortest interval between a peer's pings that
// servers accept by default (with a shorter KeepaliveTime of their own,
// that one).
const MinPingInterval = 5 * time.Second

// DefaultWindow is the HTTP/2 flow-control window of each stream a
// component serves or opens, in bytes; a connection's window is
// ConnWindows times it. The windows are static: gRPC's dynamic windows
// estimate the bandwidth-delay product with a PING after each burst of
// data that arrives, which on a call that carries one small message (an
// Eval, a task handed to an idle worker) doubles the frames, the writes
// and the wake-ups of the round trip. 1 MiB a stream moves a 1 MiB
// payload as fast as larger windows on one machine or a LAN, and bounds
// what a peer that stopped reading may have in the transport: a publisher
// tells the loss of that much (parts.TopicsConfig.InTransit) when such a
// subscriber's subscription breaks.
const (
	DefaultWindow = 1 << 20
	ConnWindows   = 4
	MinWindow     = 64 << 10 // the smallest window gRPC accepts
	MaxWindow     = 256 << 20
)

// Slack is the room a gRPC message needs beyond its payload for the other
// fields of a PalmMessage: gRPC limits are the payload limit plus this.
const Slack = 64 << 10

// Config is the set of settings shared by every role.
type Config struct {
	Logger         hclog.Logger
	LogLevel       hclog.Level
	TLS            *tls.Config
	ServerOptions  []grpc.ServerOption
	DialOptions    []grpc.DialOption
	MaxMessageSize int
	StopTimeout    time.Duration

	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration

	// Window is the static flow-control window of a stream (a
	// connection's is ConnWindows times it); 0 leaves gRPC's dynamic
	// windows.
	Window int

	// SlowSubscriberTimeout: a subscriber that has not read for this long
	// while a publication waits for it is cut.
	SlowSubscriberTimeout time.Duration

	// Metrics: the registry a component's metrics go to, and where it
	// serves /metrics itself.
	Metrics         prometheus.Registerer
	MetricsAddress  string
	MetricsListener net.Listener

	// Authentication: servers check bearer tokens (by SHA-256) and client
	// certificate names against these permissions (palm.Permission bits);
	// dialers send Token.
	Tokens       map[[32]byte]uint8
	Identities   map[string]uint8
	ClosedProbes bool
	Token        string
	// InsecureTokens accepts tokens on a server without TLS, and lets a
	// dialer send its token without TLS (palm.WithInsecureTokens).
	InsecureTokens bool

	// Middleware wraps the handlers a component runs, first outermost:
	// palm.Middleware values (config cannot name palm's types).
	Middleware []any

	errs []error
}

// New applies the shared options opts over the defaults; Apply also
// applies a role's options.
func New(opts []Shared) *Config {
	c := defaults()
	for _, o := range opts {
		o.applyConfig(c)
	}
	return c
}

// defaults is the Config before any option.
func defaults() *Config {
	return &Config{
		LogLevel:         hclog.NoLevel,
		MaxMessageSize:   DefaultMaxMessageSize,
		StopTimeout:      DefaultStopTimeout,
		KeepaliveTime:    DefaultKeepaliveTime,
		KeepaliveTimeout: DefaultKeepaliveTimeout,
		Window:           DefaultWindow,

		SlowSubscriberTimeout: DefaultSlowSubscriberTimeout,
	}
}

// Fail records a validation error found while applying an option; Err
// reports it later, from the component's constructor.
func (c *Config) Fail(err error) { c.errs = append(c.errs, err) }

// Err returns the first validation error recorded by an option, if any.
func (c *Config) Err() error {
	if len(c.errs) > 0 {
		return c.errs[0]
	}
	return nil
}

// MinTokenLength is the shortest bearer token palm accepts, in bytes.
const MinTokenLength = 16

// CheckToken fails for a token shorter than MinTokenLength; the error does
// not show the token.
func CheckToken(token string) error {
	if len(token) < MinTokenLength {
		return fmt.Errorf("a token of %d bytes is too short: tokens must be at least %d bytes (make one with `openssl rand -hex 16`)", len(token), MinTokenLength)
	}
	return nil
}

// checkTokens refuses a server that takes tokens without TLS, unless told
// to accept it.
func (c *Config) checkTokens() error {
	if len(c.Tokens) == 0 || c.TLS != nil || c.InsecureTokens {
		return nil
	}
	return fmt.Errorf("palm: WithTokens without TLS: the tokens would travel in the clear, " +
		"and every gRPC client other than Go's sends them without TLS; " +
		"serve with TLS (palm.WithTLS; the palm command: --cert and --key), " +
		"or accept tokens in the clear with palm.WithInsecureTokens (the palm command: --insecure-tokens)")
}

// MetricsWanted reports whether the component should count metrics.
func (c *Config) MetricsWanted() bool {
	return c.Metrics != nil || c.MetricsAddress != "" || c.MetricsListener != nil
}

// NamedLogger returns the component's logger: the configured logger, or a
// new one writing to standard error at Info (palm logs only start, stop and
// failures at Info), named name, at the configured level when one was set.
func (c *Config) NamedLogger(name string) hclog.Logger {
	var l hclog.Logger
	if c.Logger != nil {
		l = c.Logger.Named(name)
	} else {
		lvl := c.LogLevel
		if lvl == hclog.NoLevel {
			lvl = hclog.Info
		}
		return hclog.New(&hclog.LoggerOptions{Name: name, Level: lvl})
	}
	if c.LogLevel != hclog.NoLevel {
		l.SetLevel(c.LogLevel)
	}
	return l
}

// BufferPool is the pool gRPC takes its encoding and frame buffers from, in
// every palm server and dialer.
//
// gRPC's default pool has tiers of 256 B, 4 KiB, 16 KiB, 32 KiB and 1 MiB
// and clears each buffer it hands out, so that a batch of messages that
// encodes to 40 KiB costs clearing 1 MiB: a sixth of a pipeline's CPU went
// to it. This pool has a tier at every power of two from 256 B to 8 MiB
// (past the default message size limit and its slack, so that a 1 MiB or a
// 4 MiB payload reuses its buffers too: gRPC's top tier is 1 MiB, and such
// a message encodes to just over it) and does not clear: gRPC writes every byte of a buffer it takes (it encodes
// into it or reads a frame into it) before it reads any, as with the
// pools it builds without clearing for itself.
var BufferPool mem.BufferPool = &bufferPool{}

const (
	minPooled = 8  // 256 B
	maxPooled = 23 // 8 MiB: DefaultMaxMessageSize + Slack fits
)

type bufferPool struct {
	tiers [maxPooled + 1]sync.Pool // tiers[k] holds buffers of capacity at least 1<<k
}

func (p *bufferPool) Get(n int) *[]byte {
	if n <= 0 || n > 1<<maxPooled {
		b := make([]byte, n)
		return &b
	}
	k := max(bits.Len(uint(n-1)), minPooled)
	if b, ok := p.tiers[k].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<k)
	return &b
}

func (p *bufferPool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minPooled || c > 1<<maxPooled {
		return
	}
	p.tiers[bits.Len(uint(c))-1].Put(b)
}

// InTransit is the most bytes a stream's peer that stopped reading lets
// through to it: the stream's flow-control window, or the most gRPC's
// dynamic windows grow to (16 MiB) without one.
func (c *Config) InTransit() int {
	if c.Window > 0 {
		return c.Window
	}
	return 16 << 20
}

// Dial returns the gRPC dial options of a component that dials: TLS with
// the configured tls.Config or plaintext, call size limits of the message
// size plus Slack, then the role's extra options, then the user's
// WithDialOptions (so the user's win).
func (c *Config) Dial(extra ...grpc.DialOption) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if c.TLS != nil {
		creds = credentials.NewTLS(c.TLS)
	}
	limit := c.MaxMessageSize + Slack
	opts := []grpc.DialOption{
		experimental.WithBufferPool(BufferPool),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(limit), grpc.MaxCallSendMsgSize(limit), grpc.ForceCodecV2(Codec)),
	}
	if c.Window > 0 {
		opts = append(opts, grpc.WithStaticStreamWindowSize(int32(c.Window)), grpc.WithStaticConnWindowSize(int32(c.Window*ConnWindows)))
	}
	if c.Metrics != nil {
		m := metrics.ClientMetrics(c.Metrics)
		opts = append(opts, grpc.WithChainUnaryInterceptor(m.UnaryClientInterceptor()), grpc.WithChainStreamInterceptor(m.StreamClientInterceptor()))
	}
	// Notice a server that vanished without closing the connection.
	opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: c.KeepaliveTime, Timeout: c.KeepaliveTimeout, PermitWithoutStream: true}))
	if c.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{c.Token, !c.InsecureTokens}))
	}
	opts = append(opts, extra...)
	return append(opts, c.DialOptions...)
}

// bearer sends a token in the authorization header of every call, over
// TLS only unless told otherwise (InsecureTokens).
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// Same returns an option that makes a config the same as c: the shared
// settings of a component that is built from another one's (palm's
// components are compositions, package compose). A Config holds no role's
// settings, so none come with it.
func Same(c *Config) Shared {
	return func(dst *Config) { *dst = *c }
}

// Middlewares returns the middleware given with palm.WithMiddleware, as
// T (palm.Middleware: config cannot name palm's types).
func Middlewares[T any](c *Config) []T {
	mw := make([]T, 0, len(c.Middleware))
	for _, m := range c.Middleware {
		mw = append(mw, m.(T))
	}
	return mw
}
