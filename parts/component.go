package parts

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"regexp"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/kv"
)

// A part is a Part, and may be any of the interfaces below as well; a
// component (package compose) asks each part it registers for them, in
// this order when it serves: Prepare, RegisterServices, Describe, Run; and
// Drain when it stops.

// Env is what a component offers its parts: its name, logger and limits,
// its cache and publisher, and a way to dial other components with its TLS,
// tokens and keepalive.
type Env struct {
	// Name is the component's name: the server part of the steps it serves.
	Name string
	// Kind is what the component is (server, master, hub, ...).
	Kind string
	// Logger is the component's named logger.
	Logger hclog.Logger
	// MaxMessageSize is the largest message the component takes or sends.
	MaxMessageSize int
	// Store is the component's cache.
	Store kv.Store
	// Topics is the component's publisher, served as its PublisherService.
	Topics *Topics
	// Middleware wraps the handlers the component runs, first outermost.
	Middleware []palm.Middleware
	// TLS is the component's server TLS; nil for plaintext.
	TLS *tls.Config
	// AuthorizeHTTP checks an HTTP request that sends messages against
	// the component's tokens and identities; nil when it takes any.
	AuthorizeHTTP func(r *http.Request) error
	// Dial are the options to dial other components with: the
	// component's TLS, token, keepalive and message size limit.
	Dial []grpc.DialOption
}

// Preparer is a part that takes settings from its component before it
// serves: a part built with a zero field (a name, a limit, a logger) takes
// the component's. Prepare is called once; an error stops the component
// before it serves.
type Preparer interface {
	Prepare(env Env) error
}

// Registrar is where a part registers its gRPC services, on the
// component's listener. Health reports a service registered with
// RegisterService SERVING while the component serves; Unreported serves a
// service that health does not report, such as one that only answers that
// a request belongs elsewhere.
type Registrar interface {
	grpc.ServiceRegistrar
	Unreported(desc *grpc.ServiceDesc, impl any)
}

// Service is a part that serves gRPC services on its component's listener.
type Service interface {
	RegisterServices(r Registrar)
}

// Drainer is a part that finishes what it holds when its component stops:
// Drain stops it taking new work and returns once what it took is done, or
// ctx ends. A component drains its inbound parts first, then its outbound
// parts, then its bypass parts, then its publisher, within its stop
// timeout.
type Drainer interface {
	Drain(ctx context.Context) error
}

// Describer is a part that tells InfoService (`palm info`) and the
// component's metrics about itself.
type Describer interface {
	Describe(d *Description)
}

// Description is what a part tells about itself: gauges and counters,
// shown by InfoService and exported as metrics palm_<name> (counters
// palm_<name>_total), the steps it serves, the workers it has, the
// upstreams it follows, and notes shown with the part in InfoService.
type Description struct {
	Stats     []Stat
	Functions func() []string
	Workers   func() []WorkerSummary
	Upstreams []string
	// Pipelined: the part sends results on to the next step of a
	// pipeline rather than back to the client.
	Pipelined bool
	Notes     map[string]string
}

// Stat is a gauge or a counter a part reports.
type Stat struct {
	// Name is in snake case, such as tasks_queued.
	Name string
	// Help says what it counts, for /metrics.
	Help string
	// Counter: it only grows (exported with a _total suffix).
	Counter bool
	// Read reads it now.
	Read func() uint64
}

// Gauge adds a gauge read by read.
func (d *Description) Gauge(name, help string, read func() int) {
	d.Stats = append(d.Stats, Stat{Name: name, Help: help, Read: func() uint64 { return uint64(max(0, read())) }})
}

// Counter adds a counter read by read.
func (d *Description) Counter(name, help string, read func() uint64) {
	d.Stats = append(d.Stats, Stat{Name: name, Help: help, Counter: true, Read: read})
}

// Note adds a note shown with the part in InfoService.
func (d *Description) Note(key, value string) {
	if d.Notes == nil {
		d.Notes = map[string]string{}
	}
	d.Notes[key] = value
}

var statName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// CheckStat fails for a stat name metrics cannot carry.
func CheckStat(s Stat) error {
	switch {
	case !statName.MatchString(s.Name):
		return fmt.Errorf("stat %q: a name is lower-case letters, digits and underscores, starting with a letter, such as tasks_queued", s.Name)
	case s.Read == nil:
		return fmt.Errorf("stat %q has no Read function", s.Name)
	}
	return nil
}

// loggerOr returns l, or env's logger when l is nil or quiet.
func loggerOr(l hclog.Logger, env Env) hclog.Logger {
	if l == nil || l == quiet {
		if env.Logger != nil {
			return env.Logger
		}
		return quiet
	}
	return l
}

// quiet is the logger of a part given none.
var quiet = hclog.NewNullLogger()
