// Command palm runs and talks to palm components.
//
//	palm demo                          run a server and a client in one process
//	palm eval my_server.foo 'a message' call a function on a running server
//	palm kv get|set|delete|keys        use a running server's cache
//	palm health ADDRESS                check that a component serves
//	palm info ADDRESS                  describe a running component
//	palm server|pipeline|sink NAME     run a component whose functions are commands (--exec)
//	palm master|hub NAME               run a master or a hub
//	palm worker NAME --master ADDRESS  run a worker whose functions are commands (--exec)
//
// Every flag has an environment twin: --address is PALM_ADDRESS, and so on;
// a flag given on the command line wins over its twin.
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

// common holds the flags every client verb shares.
type common struct {
	address  string
	server   string
	session  string
	logLevel string
	security security
	sub      string
}

func newRoot(stdin io.Reader) *cobra.Command {
	var c common
	root := &cobra.Command{
		Use:           "palm",
		Short:         "Run and talk to palm components",
		Long:          "palm runs and talks to the components of a palm cluster: servers, masters, hubs, pipeline stages, sinks and workers, whose functions may be commands in any language (--exec), and the clients that call their functions and use their caches.\n\nEvery flag has an environment twin named PALM_ and the flag's name in capitals, dashes as underscores (--address is PALM_ADDRESS). A flag given on the command line wins.",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return fromEnvironment(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&c.address, "address", "a", "127.0.0.1:5555", "address of the server to talk to")
	pf.StringVar(&c.server, "server", "", "name of the server (default: the server named by the function, or \"palm\")")
	pf.StringVar(&c.session, "session", "", "session: a prefix for every cache key, as the original's session")
	pf.StringVar(&c.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error or off")
	pf.StringVar(&c.sub, "sub-address", "", "take replies from the component at this address: the last stage of a pipeline that does not end where it starts (the original's sub_address)")
	c.security.flags(pf)
	root.AddCommand(newDemo(&c), newEval(&c, stdin), newKV(&c, stdin), newJob(&c, stdin), newHealth(&c), newInfo(&c),
		newServerVerb(&c), newStageVerb(&c, "pipeline"), newStageVerb(&c, "sink"),
		newMasterVerb(&c, "master"), newMasterVerb(&c, "hub"), newWorkerVerb(&c), execHelp())
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
