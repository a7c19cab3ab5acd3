package palm

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/gopalm/palm/internal/config"
)

// Option is an option every palm component takes: the options of this
// package (logger, TLS, tokens, keepalive, metrics, limits). Each role has
// its own option type too (master.Option, pipeline.ServerOption,
// worker.Option, client.Option, ...), which an Option satisfies, and which
// its package's options satisfy only for the roles that take them: giving
// a role an option meant for another does not compile.
type Option = config.Shared

// WithLogger sets the hclog logger a component logs through. The component
// uses a sub-logger named after itself (its server name, worker name, or
// "client"). Default: a new logger per component that writes to standard
// error at Info, at which palm logs only start-up, shutdown and failures.
func WithLogger(l hclog.Logger) Option {
	return func(c *config.Config) { c.Logger = l }
}

// WithLogLevel sets the component's log level, like the original's
// log_level. Default: Info. With a logger given by WithLogger, the level is
// set on the component's sub-logger; give that logger IndependentLevels to
// keep levels apart per component.
func WithLogLevel(level hclog.Level) Option {
	return func(c *config.Config) { c.LogLevel = level }
}

// WithTLS makes a component use TLS with cfg: a server serves with it, and
// the connections a component opens (a client's, a worker's, a stage's to
// its upstreams) dial with it. A component that does both, a Pipeline, a
// Sink or a Hub, needs a config good for both sides, such as TLSFiles
// builds. Default: plaintext.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config.Config) { c.TLS = cfg }
}

// WithServerOptions adds gRPC server options to the component's listener,
// after palm's own (so they win where both set the same thing).
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(c *config.Config) { c.ServerOptions = append(c.ServerOptions, opts...) }
}

// WithDialOptions adds gRPC dial options to the component's connections,
// after palm's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config.Config) { c.DialOptions = append(c.DialOptions, opts...) }
}

// WithMaxMessageSize sets the largest gRPC message, in bytes, a component
// receives or sends; a payload that cannot fit is refused with
// ResourceExhausted naming the limit. Default: 4 MiB.
func WithMaxMessageSize(n int) Option {
	return func(c *config.Config) {
		if n <= 0 {
			c.Fail(fmt.Errorf("palm: WithMaxMessageSize(%d): the size must be positive", n))
			return
		}
		c.MaxMessageSize = n
	}
}

// WithStopTimeout bounds a server's graceful stop: after its context ends,
// it finishes the messages it holds for at most d, then closes the
// connections that remain. Default: 10 s.
func WithStopTimeout(d time.Duration) Option {
	return func(c *config.Config) {
		if d <= 0 {
			c.Fail(fmt.Errorf("palm: WithStopTimeout(%v): the timeout must be positive", d))
			return
		}
		c.StopTimeout = d
	}
}

// Permission is what a caller may use on a palm server that requires
// authentication (WithTokens, WithIdentities). Combine them with |.
type Permission uint8

const (
	// UseGateway allows sending messages: palm.v1.GatewayService.
	UseGateway Permission = 1 << iota
	// UseCache allows the component's cache: palm.v1.CacheService.
	UseCache
	// UseDispatch allows taking tasks as a worker: palm.v1.DispatchService.
	UseDispatch
	// UseSubscribe allows palm.v1.PublisherService, to receive a
	// client's own replies: the caller may subscribe only to client ids,
	// each claimed by the first caller that subscribes with it, and
	// receives only the publications whose message names that client.
	// With UseStream too, it may subscribe to anything.
	UseSubscribe
	// UseProbes allows health and reflection when WithClosedProbes has
	// closed them; otherwise they are open to all, for load balancers and
	// grpcurl.
	UseProbes
	// UseStream allows subscribing to a component's published stream: its
	// own name, where a pipelined component sends every client's results
	// on, and any other topic, with every publication under it. It is for
	// stages (StageRole); it needs UseSubscribe too.
	UseStream
)

// The usual permissions of each role.
const (
	// ClientRole is what a client needs: send, use the cache, and receive
	// its own replies from the last stage of a pipeline (subscribing to its
	// client id only).
	ClientRole = UseGateway | UseCache | UseSubscribe
	// WorkerRole is what a worker needs: take tasks and use the cache.
	WorkerRole = UseDispatch | UseCache
	// StageRole is what a Pipeline, a Sink or a Hub needs of the component
	// before it: subscribe to its published stream.
	StageRole = UseSubscribe | UseStream
	// AllRoles allows everything.
	AllRoles = UseGateway | UseCache | UseDispatch | UseSubscribe | UseProbes | UseStream
)

// MinTokenLength is the shortest bearer token palm accepts, in bytes:
// WithTokens, WithToken and the palm command's --tokens file refuse
// shorter ones.
const MinTokenLength = config.MinTokenLength

// WithTokens makes a server require a bearer token on every call (health
// and reflection aside, see WithClosedProbes), each token granting its
// permissions: a call without a known token fails with Unauthenticated,
// one whose token does not allow the service with PermissionDenied.
// Every token must be at least 16 bytes long. The server needs TLS
// (WithTLS) too, or its constructor fails: without TLS the tokens would
// travel in the clear, unless WithInsecureTokens accepts that. Dialers
// send theirs with WithToken. Failed authentications are rate-limited per
// peer address and per connection (see docs/security.md).
func WithTokens(tokens map[string]Permission) Option {
	return func(c *config.Config) {
		if c.Tokens == nil {
			c.Tokens = map[[32]byte]uint8{}
		}
		for t, p := range tokens {
			if err := config.CheckToken(t); err != nil {
				c.Fail(fmt.Errorf("palm: WithTokens: %w", err))
				return
			}
			c.Tokens[sha256.Sum256([]byte(t))] |= uint8(p)
		}
	}
}

// WithIdentities makes a server grant permissions to callers that present
// a client certificate it verified (mutual TLS, see TLSFiles.ClientAuth),
// by the certificate's common name or any of its DNS names. It requires
// authentication on every call as WithTokens does; both may be given.
func WithIdentities(ids map[string]Permission) Option {
	return func(c *config.Config) {
		if c.Identities == nil {
			c.Identities = map[string]uint8{}
		}
		for id, p := range ids {
			c.Identities[id] |= uint8(p)
		}
	}
}

// WithClosedProbes makes health and reflection require UseProbes too, on a
// server that requires authentication. Default: open to all.
func WithClosedProbes() Option {
	return func(c *config.Config) { c.ClosedProbes = true }
}

// WithToken makes a client, a worker or a stage send token as a bearer
// token on every call. The token must be at least 16 bytes long. It needs
// TLS (WithTLS): palm's dialers refuse to send it in the clear, unless
// WithInsecureTokens is given too. (Other gRPC runtimes, and grpcurl,
// send a token without TLS if asked to.)
func WithToken(token string) Option {
	return func(c *config.Config) {
		if err := config.CheckToken(token); err != nil {
			c.Fail(fmt.Errorf("palm: WithToken: %w", err))
			return
		}
		c.Token = token
	}
}

// WithInsecureTokens lets bearer tokens travel without TLS: a server with
// WithTokens and no WithTLS starts (its constructor fails otherwise), and
// a dialer with WithToken and no WithTLS sends its token in the clear.
// Anyone who can see the traffic can then read the tokens and use them.
// For a single machine's loopback interface, or tests. Default: off.
func WithInsecureTokens() Option {
	return func(c *config.Config) { c.InsecureTokens = true }
}

// DialOptions returns the gRPC dial options palm's own dialers would use
// with opts (TLS, token, message size limits, palm's codec, and
// WithDialOptions last), for a raw gRPC connection to a palm component.
// It fails when an option is invalid.
func DialOptions(opts ...Option) ([]grpc.DialOption, error) {
	c := config.New(opts)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return c.Dial(), nil
}

// WithKeepalive sets how long a connection may be silent before palm pings
// the other side, and how long it then waits for the answer before it
// closes the connection as dead: a worker, a stage or a client that
// vanished without closing (a crash of its machine, a network cut, a
// stopped process) is noticed within interval + timeout, and a master
// hands that worker's tasks to others. It applies to a server's
// connections and to those a component dials. Default: 30 s and 10 s.
//
// Servers accept pings from their peers every 5 s or more (the common gRPC
// runtimes ping no more often than every 10 s), or every interval when
// that is shorter, so a dialer whose interval is under 5 s needs servers
// with the same setting.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(c *config.Config) {
		if interval <= 0 || timeout <= 0 {
			c.Fail(fmt.Errorf("palm: WithKeepalive(%v, %v): both must be positive", interval, timeout))
			return
		}
		c.KeepaliveTime, c.KeepaliveTimeout = interval, timeout
	}
}

// WithWindowSize sets the HTTP/2 flow-control window, in bytes, of each
// stream a component serves or opens (a connection's is four times it):
// how much a peer may send before the reader has taken it. The windows are
// static, so that a round trip of one small message costs no more frames
// than the message and its reply. Default: 1 MiB (4 MiB a connection),
// which moves large payloads as fast as larger windows on one machine or a
// LAN; a window must hold a link's bandwidth times its round-trip time to
// fill it (100 MB/s over 20 ms takes 2 MiB). n must be from 64 KiB to
// 256 MiB. WithWindowSize(0) leaves gRPC's dynamic windows, which grow
// with the bandwidth-delay product it estimates (to at most 16 MiB), at
// the cost of a PING after each burst of data that arrives.
//
// The window also bounds what may be in the transport to a stage that
// stopped reading: when its subscription breaks, a publisher tells the
// loss of that much of what it last sent it. Give the components of one
// cluster the same window.
func WithWindowSize(n int) Option {
	return func(c *config.Config) {
		if n != 0 && (n < config.MinWindow || n > config.MaxWindow) {
			c.Fail(fmt.Errorf("palm: WithWindowSize(%d): the window must be 0 (gRPC's dynamic windows) or from %d (64 KiB) to %d (256 MiB) bytes", n, config.MinWindow, config.MaxWindow))
			return
		}
		c.Window = n
	}
}

// WithMetrics makes a component count Prometheus metrics into reg: gRPC
// server and client metrics (go-grpc-middleware's Prometheus provider) and
// palm's own — messages in and out and function errors by step, workers
// connected, tasks queued, in flight and redelivered, subscriptions and the
// messages waiting in their queues, messages dropped and missed, cache
// keys — all labelled with the component's name and kind. Several
// components may share reg; two with the same name may not serve at once.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config.Config) { c.Metrics = reg }
}

// WithMetricsAddress makes a server serve its metrics at /metrics over
// HTTP on addr, a listener of its own beside its gRPC one, while it
// serves: from the registry given with WithMetrics (which must then also
// be a prometheus.Gatherer), or from a registry of its own with the Go
// runtime's and the process's metrics too.
func WithMetricsAddress(addr string) Option {
	return func(c *config.Config) { c.MetricsAddress = addr }
}

// WithMetricsListener is WithMetricsAddress on a listener the caller
// opened; the server closes it when it stops.
func WithMetricsListener(lis net.Listener) Option {
	return func(c *config.Config) { c.MetricsListener = lis }
}

// SlowSubscriberTimeout bounds how long a component that publishes (a
// pipeline.Server, Pipeline or Sink, a master.Master or Hub) waits for one
// subscriber that does not read: when a message waits for room in that
// subscriber's full queue and the subscriber has taken nothing from it for
// d, the subscription is ended with ResourceExhausted, counted
// (slow_subscribers_cut in InfoService, palm_slow_subscribers_cut_total),
// logged at Warn, and the publisher goes on for the others. What was queued
// for it is lost, and reported to the clients that wait for it. While a
// subscriber has not read for half of d, health reports
// palm.v1.PublisherService NOT_SERVING. Components that do not publish
// ignore it. Default: 10 s. The palm command's --slow-subscriber-timeout.
func SlowSubscriberTimeout(d time.Duration) Option {
	return func(c *config.Config) {
		if d <= 0 {
			c.Fail(fmt.Errorf("palm: SlowSubscriberTimeout(%v): the timeout must be positive", d))
			return
		}
		c.SlowSubscriberTimeout = d
	}
}
