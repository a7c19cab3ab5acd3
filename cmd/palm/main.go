// Command palm runs and talks to palm components.
//
//	palm demo                          run a server and a client in one process
//	palm eval my_server.foo 'a message' call a function on a running server
//	palm kv get|set|delete|keys        use a running server's cache
//	palm health ADDRESS                check that a component serves
//	palm info ADDRESS                  describe a running component
//	palm server|pipeline|sink NAME     run a component whose functions are commands (--exec)
//	palm master|hub NAME               run a master or a hub
//	palm worker NAME --address ADDRESS run a worker whose functions are commands (--exec)
//
// Every flag has an environment twin: --address is PALM_ADDRESS, and so on;
// a flag given on the command line wins over its twin. Each verb takes the
// flags it uses, and refuses the others.
//
// The verbs that talk to a component fail at once, saying why and what to
// do, when nothing answers at its address; with --wait they wait for it,
// printing "waiting for ADDRESS…".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/status"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code: 0 on
// success, 1 when the command failed, 2 for a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if errors.Is(err, errSilent) {
		return 1
	}
	// A gRPC status is a failure of the call, whatever its message says
	// (a missing key named "flag" is not a usage error), so it is looked
	// at before cobra's usage errors, which are recognised by their words.
	var usage usageError
	if errors.As(err, &usage) {
		return usageFailure(stderr, err)
	}
	if st, ok := status.FromError(err); ok {
		fmt.Fprintf(stderr, "palm: %s (%s)\n", st.Message(), st.Code())
		return 1
	}
	if msg := err.Error(); strings.HasPrefix(msg, "unknown ") || strings.Contains(msg, "flag") || strings.Contains(msg, "arg(s)") {
		return usageFailure(stderr, err)
	}
	fmt.Fprintf(stderr, "palm: %v\n", err)
	return 1
}

// usageFailure reports a usage error and returns its exit code, 2.
func usageFailure(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "palm: %v\nRun 'palm --help' for usage.\n", err)
	return 2
}

type usageError struct{ error }

// errSilent fails a command that has already said why.
var errSilent = errors.New("failed")

// common holds the flags the verbs share. Each verb has a common of its
// own, and registers only the flags it uses.
type common struct {
	address    string
	positional bool // the verb may take the address as its argument
	server     string
	session    string
	logLevel   string
	security   security
	sub        string
	wait       time.Duration
}

// defaultWait is how long a bare --wait waits.
const defaultWait = 30 * time.Second

// talkFlags adds the flags of a verb that dials the component at
// --address (default addr): the address and the TLS and token flags.
func (c *common) talkFlags(f *pflag.FlagSet, addr, usage string) {
	f.StringVarP(&c.address, "address", "a", addr, usage)
	c.security.flags(f)
}

// waitFlag adds --wait.
func (c *common) waitFlag(f *pflag.FlagSet) {
	f.DurationVar(&c.wait, "wait", 0, "wait this long for the component to come up (a bare --wait: "+defaultWait.String()+"), rather than fail at once when nothing answers")
	f.Lookup("wait").NoOptDefVal = defaultWait.String()
}

func (c *common) logFlag(f *pflag.FlagSet) {
	f.StringVar(&c.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error or off")
}

func (c *common) serverFlag(f *pflag.FlagSet) {
	f.StringVar(&c.server, "server", "", "name of the server (default: the server named by the function, or \"palm\")")
}

func (c *common) sessionFlag(f *pflag.FlagSet) {
	f.StringVar(&c.session, "session", "", "session: a prefix for every cache key, as the original's session")
}

func (c *common) subFlag(f *pflag.FlagSet) {
	f.StringVar(&c.sub, "sub-address", "", "take replies from the component at this address: the last stage of a pipeline that does not end where it starts (the original's sub_address)")
}

// clientFlags are the flags of a verb that uses a Client.
func (c *common) clientFlags(f *pflag.FlagSet) {
	c.talkFlags(f, "127.0.0.1:5555", "address of the server to talk to")
	c.waitFlag(f)
	c.logFlag(f)
	c.serverFlag(f)
}

func newRoot(stdin io.Reader) *cobra.Command {
	fresh := func() *common { return &common{} }
	root := &cobra.Command{
		Use:   "palm",
		Short: "Run and talk to palm components",
		Long: `palm runs and talks to the components of a palm cluster: servers, masters, hubs, pipeline stages, sinks and workers, whose functions may be commands in any language (--exec), and the clients that call their functions and use their caches.

Every flag has an environment twin named PALM_ and the flag's name in capitals, dashes as underscores (--address is PALM_ADDRESS). A flag given on the command line wins. Each verb takes the flags it uses, after the verb: see 'palm VERB --help'.

A verb that talks to a component (eval, job, kv, health, info) fails at once when nothing answers at its address, saying why and what to do: nothing listens there (is the component running? which flag sets the address), the component speaks TLS and palm plaintext (--cacert, or --insecure) or the reverse (--plaintext), it requires a client certificate (--cert, --key). With --wait it waits for the component to come up, for a bounded time, printing "waiting for ADDRESS…". Once connected, a call waits for a component that restarts, until its --timeout.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return fromEnvironment(cmd)
		},
	}
	root.AddCommand(newDemo(fresh()), newEval(fresh(), stdin), newKV(fresh(), stdin), newJob(fresh(), stdin), newHealth(fresh()), newInfo(fresh()),
		newServerVerb(fresh()), newStageVerb(fresh(), "pipeline"), newStageVerb(fresh(), "sink"),
		newMasterVerb(fresh(), "master"), newMasterVerb(fresh(), "hub"), newWorkerVerb(fresh()), execHelp())
	return root
}

// fromEnvironment sets every flag not given on the command line from its
// PALM_ twin, when that is set.
func fromEnvironment(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "PALM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := f.Value.Set(v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %v", name, v, e)}
			}
		}
	})
	return err
}
