package palm

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/gopalm/palm/internal/config"
)

// Option configures any palm component: servers, masters, workers, pipeline
// stages and clients take the same type. Options that only make sense for
// one role (such as pipeline.Concurrency) are Options too; giving one to
// another role makes that component's constructor fail with an error naming
// the option.
type Option = config.Option

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

// WithTLS makes a server serve TLS with cfg, and a client or worker dial
// with TLS using cfg. Default: plaintext.
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
