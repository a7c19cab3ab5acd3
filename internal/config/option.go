package config

// The option interfaces. Every option changes the Config all roles share,
// a role's own settings, or both; which constructors take it is a matter
// of its type, so that an option given to a role that does not take it
// does not compile.
//
// Each role's package declares its option type as an interface embedding
// one of the For interfaces below (master.Option is interface{ ForMaster }).
// They hold unexported methods, so only types of this package have them,
// and types elsewhere by embedding one of this package's types: no type
// outside palm can be an option. Shared has every role's method. A role's
// own option is a struct of the role's package that embeds the markers of
// the roles that take it and a Setting of the role's settings:
//
//	type both struct {
//		config.Master
//		config.Hub
//		config.Setting[settings]
//	}

// Option is what every option is: a change to the shared Config (none for
// a role's own option).
type Option interface{ applyConfig(*Config) }

// The options each role takes. Stage is a Pipeline's and a Sink's, which
// take the same options; Component is a component composed from parts,
// which takes the shared options.
type (
	ForMaster interface {
		Option
		master()
	}
	ForHub interface {
		Option
		hub()
	}
	ForServer interface {
		Option
		server()
	}
	ForStage interface {
		Option
		stage()
	}
	ForWorker interface {
		Option
		worker()
	}
	ForClient interface {
		Option
		client()
	}
	ForComponent interface {
		Option
		component()
	}
)

// Shared is an option every role takes: it changes the Config. palm.Option
// is Shared.
type Shared func(*Config)

func (f Shared) applyConfig(c *Config) {
	if f != nil {
		f(c)
	}
}

func (Shared) master()    {}
func (Shared) hub()       {}
func (Shared) server()    {}
func (Shared) stage()     {}
func (Shared) worker()    {}
func (Shared) client()    {}
func (Shared) component() {}

// The markers a role's own option embeds, one for each role that takes it.
type (
	Master    struct{}
	Hub       struct{}
	Server    struct{}
	Stage     struct{}
	Worker    struct{}
	Client    struct{}
	Component struct{}
)

func (Master) master()       {}
func (Hub) hub()             {}
func (Server) server()       {}
func (Stage) stage()         {}
func (Worker) worker()       {}
func (Client) client()       {}
func (Component) component() {}

// Setting is a role's own option's change to the role's settings S. It
// leaves the Config alone.
type Setting[S any] func(*S)

func (Setting[S]) applyConfig(*Config) {}

func (f Setting[S]) applySetting(s *S) { f(s) }

// setting is an option that changes settings S.
type setting[S any] interface{ applySetting(*S) }

// Apply applies opts over the defaults: each one's change to the Config,
// and each role option's change to s, in the order given (a later option
// wins). It returns the first invalid value an option found, or a
// component that takes tokens without TLS (WithTokens needs WithTLS or
// WithInsecureTokens). Nil options are skipped.
func Apply[S any, O Option](opts []O, s *S) (*Config, error) {
	c := defaults()
	for _, o := range opts {
		if any(o) == nil {
			continue
		}
		o.applyConfig(c)
		if r, ok := any(o).(setting[S]); ok {
			r.applySetting(s)
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	if err := c.checkTokens(); err != nil {
		return nil, err
	}
	return c, nil
}
