package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/execfn"
	"github.com/gopalm/palm/internal/metrics"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

// serving holds the flags of the verbs that run a component.
type serving struct {
	listen         string
	metrics        string
	maxMessageSize int
	keepalive      time.Duration
	keepaliveWait  time.Duration
	stopTimeout    time.Duration
	slowSubscriber time.Duration
	clientAuth     bool
	tokens         string
	pipelined      bool
	from           []string
	execs          []string
	execMode       string
	execTimeout    time.Duration
	concurrency    int
	cacheMaxBytes  int
	cacheMaxKeys   int
	http           string
}

// flags adds the flags of a component that serves on listen (default
// addr), with the TLS and log flags of c; what says which optional groups
// it takes ("from" also means it dials its upstreams).
func (s *serving) flags(c *common, f *pflag.FlagSet, addr string, what ...string) {
	f.StringVar(&s.listen, "listen", addr, "address to serve on")
	s.connectionFlags(f)
	c.security.serveFlags(f, slices.Contains(what, "from"))
	c.logFlag(f)
	f.IntVar(&s.maxMessageSize, "max-message-size", 4<<20, "largest payload or cache value, in bytes")
	f.DurationVar(&s.stopTimeout, "stop-timeout", 10*time.Second, "on SIGINT or SIGTERM, finish what is held for at most this long")
	f.DurationVar(&s.slowSubscriber, "slow-subscriber-timeout", 10*time.Second, "end a subscription that has not read for this long while a message waits for it")
	f.BoolVar(&s.clientAuth, "client-auth", false, "require client certificates signed by --cacert (mutual TLS)")
	f.StringVar(&s.tokens, "tokens", "", "file of accepted bearer tokens, one per line: ROLE TOKEN, ROLE one of client, worker, stage, all; each token at least 16 bytes (needs --cert and --key, or --insecure-tokens)")
	f.IntVar(&s.cacheMaxBytes, "cache-max-bytes", kv.DefaultMaxBytes, "most bytes the cache holds, keys and values plus 64 bytes an entry; a Set past it fails with ResourceExhausted")
	f.IntVar(&s.cacheMaxKeys, "cache-max-keys", kv.DefaultMaxKeys, "most keys the cache holds; a Set of a new key past it fails with ResourceExhausted")
	for _, w := range what {
		switch w {
		case "pipelined":
			f.BoolVar(&s.pipelined, "pipelined", false, "send results on to the next step (published under the component's name) instead of to the client")
		case "from":
			f.StringArrayVar(&s.from, "from", nil, "upstream to subscribe to, as ADDRESS=TOPIC (the topic is usually the upstream's name)")
		case "exec":
			s.execFlags(f)
		}
	}
}

// connectionFlags are the metrics and keepalive flags, of every verb that
// runs a component, a worker's too.
func (s *serving) connectionFlags(f *pflag.FlagSet) {
	f.StringVar(&s.metrics, "metrics-address", "", "serve Prometheus metrics at http://ADDRESS/metrics (default: none)")
	f.DurationVar(&s.keepalive, "keepalive", 30*time.Second, "ping a connection silent for this long")
	f.DurationVar(&s.keepaliveWait, "keepalive-timeout", 10*time.Second, "close a connection whose ping is not answered within this")
}

func (s *serving) execFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&s.execs, "exec", nil, "serve FUNCTION=COMMAND: COMMAND (run by sh -c) gets each payload on standard input and answers on standard output (repeatable)")
	f.StringVar(&s.execMode, "exec-mode", "once", "once: a process per message; lines: long-running, a line in and a line out per message; frames: long-running, length-delimited frames (see 'palm help exec')")
	f.IntVar(&s.concurrency, "concurrency", 1, "messages handled at once (long-running modes keep this many processes)")
	f.DurationVar(&s.execTimeout, "exec-timeout", execfn.DefaultTimeout, "fail a message whose command has not answered within this, and kill the command")
}

// options are the palm options of the flags common to every component.
func (s *serving) options(c *common, cmd *cobra.Command) ([]palm.Option, error) {
	logger, err := c.logger(cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	files := c.security.files
	files.ClientAuth = s.clientAuth
	sec := security{files: files, plaintext: c.security.plaintext}
	opts, err := sec.serverOptions(s.listen)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		palm.WithLogger(logger),
		palm.WithMaxMessageSize(s.maxMessageSize),
		palm.WithKeepalive(s.keepalive, s.keepaliveWait),
		palm.WithStopTimeout(s.stopTimeout),
		palm.SlowSubscriberTimeout(s.slowSubscriber))
	if c.security.token != "" {
		opts = append(opts, palm.WithToken(c.security.token))
	}
	if c.security.insecureTokens {
		opts = append(opts, palm.WithInsecureTokens())
	}
	if s.metrics != "" {
		opts = append(opts, palm.WithMetricsAddress(s.metrics))
	}
	if s.tokens != "" {
		tokens, err := readTokens(s.tokens)
		if err != nil {
			return nil, usageError{err}
		}
		opts = append(opts, palm.WithTokens(tokens))
	}
	return opts, nil
}

// cache returns the component's cache: an in-memory store within the
// --cache-max-bytes and --cache-max-keys quotas.
func (s *serving) cache() (*kv.Memory, error) {
	if s.cacheMaxBytes <= 0 {
		return nil, usageError{fmt.Errorf("--cache-max-bytes %d: must be at least 1", s.cacheMaxBytes)}
	}
	if s.cacheMaxKeys <= 0 {
		return nil, usageError{fmt.Errorf("--cache-max-keys %d: must be at least 1", s.cacheMaxKeys)}
	}
	return kv.NewMemory(kv.MaxBytes(s.cacheMaxBytes), kv.MaxKeys(s.cacheMaxKeys)), nil
}

// componentOptions are options and the cache of a component that serves.
func (s *serving) componentOptions(c *common, cmd *cobra.Command) ([]palm.Option, *kv.Memory, error) {
	shared, err := s.options(c, cmd)
	if err != nil {
		return nil, nil, err
	}
	store, err := s.cache()
	if err != nil {
		return nil, nil, err
	}
	return shared, store, nil
}

// pipelineOptions are options plus those of a Server, Pipeline or Sink.
func (s *serving) pipelineOptions(c *common, cmd *cobra.Command) ([]pipeline.CommonOption, error) {
	shared, store, err := s.componentOptions(c, cmd)
	if err != nil {
		return nil, err
	}
	opts := append(convert(shared, func(o palm.Option) pipeline.CommonOption { return o }),
		pipeline.Concurrency(s.concurrency), pipeline.WithStore(store))
	if s.pipelined {
		opts = append(opts, pipeline.Pipelined())
	}
	return opts, nil
}

// masterOptions are options plus those of a Master or a Hub.
func (s *serving) masterOptions(c *common, cmd *cobra.Command) ([]master.CommonOption, error) {
	shared, store, err := s.componentOptions(c, cmd)
	if err != nil {
		return nil, err
	}
	opts := append(convert(shared, func(o palm.Option) master.CommonOption { return o }), master.WithStore(store))
	if s.pipelined {
		opts = append(opts, master.Pipelined())
	}
	return opts, nil
}

// convert returns opts as the options of a constructor that takes O: to is
// an identity, there for the compiler to check that each T is an O (a
// palm.Option is an option of every role, a pipeline.CommonOption one of
// each of the package's components).
func convert[O, T any](opts []T, to func(T) O) []O {
	out := make([]O, len(opts))
	for i, o := range opts {
		out[i] = to(o)
	}
	return out
}

// serverOptions are the TLS options of a component serving on listen:
// TLS when a TLS flag is given; plaintext on loopback or with --plaintext.
func (s *security) serverOptions(listen string) ([]palm.Option, error) {
	f := s.files
	tlsWanted := f.CACert != "" || f.Cert != "" || f.Key != "" || f.ClientAuth
	if tlsWanted && !s.plaintext && f.Cert == "" {
		return nil, usageError{fmt.Errorf("serving TLS needs the component's certificate and key (--cert, --key)")}
	}
	return s.tls(tlsWanted, fmt.Sprintf("serve on %s", listen), listen, "give --cert and --key (and --cacert) for TLS")
}

// readTokens reads a tokens file: ROLE TOKEN per line, # comments.
func readTokens(file string) (map[string]palm.Permission, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	roles := map[string]palm.Permission{"client": palm.ClientRole, "worker": palm.WorkerRole, "stage": palm.StageRole, "all": palm.AllRoles}
	tokens := map[string]palm.Permission{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		role, token, ok := strings.Cut(line, " ")
		token = strings.TrimSpace(token)
		p, known := roles[role]
		if !ok || !known || token == "" {
			return nil, fmt.Errorf("%s:%d: expected ROLE TOKEN with ROLE one of client, worker, stage, all", file, n)
		}
		if len(token) < palm.MinTokenLength {
			return nil, fmt.Errorf("%s:%d: the token is %d bytes: tokens must be at least %d bytes (make one with `openssl rand -hex 16`)", file, n, len(token), palm.MinTokenLength)
		}
		tokens[token] |= p
	}
	return tokens, sc.Err()
}

// upstreams parses the --from flags.
func (s *serving) upstreams(one bool) ([]pipeline.Upstream, error) {
	if len(s.from) == 0 || (one && len(s.from) > 1) {
		want := "one --from ADDRESS=TOPIC"
		if !one {
			want = "at least one --from ADDRESS=TOPIC"
		}
		return nil, usageError{fmt.Errorf("give %s", want)}
	}
	var ups []pipeline.Upstream
	for _, f := range s.from {
		addr, topic, ok := strings.Cut(f, "=")
		if !ok || addr == "" || topic == "" {
			return nil, usageError{fmt.Errorf("--from %q: expected ADDRESS=TOPIC", f)}
		}
		ups = append(ups, pipeline.Upstream{Address: addr, Topic: topic})
	}
	return ups, nil
}

// functions makes the --exec functions; close stops their processes.
func (s *serving) functions(c *common, cmd *cobra.Command, handle func(string, palm.Handler)) (closeAll func(), err error) {
	if len(s.execs) == 0 {
		return nil, usageError{fmt.Errorf("give at least one --exec FUNCTION=COMMAND")}
	}
	mode, err := execfn.ParseMode(s.execMode)
	if err != nil {
		return nil, usageError{err}
	}
	if s.concurrency < 1 {
		return nil, usageError{fmt.Errorf("--concurrency %d: must be at least 1", s.concurrency)}
	}
	if s.execTimeout <= 0 {
		return nil, usageError{fmt.Errorf("--exec-timeout %v: must be positive", s.execTimeout)}
	}
	logger, err := c.logger(cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	var funcs []*execfn.Func
	for _, e := range s.execs {
		spec, err := execfn.ParseSpec(e)
		if err != nil {
			return nil, usageError{err}
		}
		f := execfn.Handler(spec, mode, s.concurrency, logger.Named("exec"),
			execfn.Timeout(s.execTimeout), execfn.MaxOutput(s.maxMessageSize))
		funcs = append(funcs, f)
		handle(spec.Function, f)
	}
	return func() {
		for _, f := range funcs {
			f.Close()
		}
	}, nil
}

// servable is what every component is.
type servable interface {
	ListenAndServe(ctx context.Context, addr string) error
}

func newServerVerb(c *common) *cobra.Command {
	var s serving
	cmd := &cobra.Command{
		Use:   "server NAME",
		Short: "Run a standalone server whose functions are commands",
		Long: `server runs a standalone server named NAME on --listen, the original's
Server: clients call NAME.FUNCTION, and each --exec FUNCTION=COMMAND runs
COMMAND for the messages sent to it. With --pipelined the results go on to
the next step of a pipeline instead of back to the client.`,
		Example: `  palm server my_server --exec foo='sed "s/^/you sent me /"'
  palm server my_server --listen 0.0.0.0:5555 --cert server.pem --key server-key.pem --exec-mode lines --exec foo=./foo.py`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := s.pipelineOptions(c, cmd)
			if err != nil {
				return err
			}
			serverOpts := convert(opts, func(o pipeline.CommonOption) pipeline.ServerOption { return o })
			if s.http != "" {
				serverOpts = append(serverOpts, pipeline.HTTP(s.http))
			}
			srv, err := pipeline.NewServer(args[0], serverOpts...)
			if err != nil {
				return usageError{err}
			}
			closeAll, err := s.functions(c, cmd, srv.Handle)
			if err != nil {
				return err
			}
			defer closeAll()
			return srv.ListenAndServe(cmd.Context(), s.listen)
		},
	}
	s.flags(c, cmd.Flags(), "127.0.0.1:5555", "pipelined", "exec")
	s.httpFlag(cmd.Flags())
	return cmd
}

func newStageVerb(c *common, kind string) *cobra.Command {
	var s serving
	addr, short, long := "127.0.0.1:5560", "Run a pipeline stage whose functions are commands", `pipeline runs a Pipeline named NAME on --listen: it subscribes to the
component at --from ADDRESS=TOPIC, runs the --exec command of the function
each message names, and sends the result to the client (whose client
subscribes here with SubAddress) or, with --pipelined, on to the next step.`
	if kind == "sink" {
		addr, short, long = "127.0.0.1:5580", "Run a sink that joins several streams", `sink runs a Sink named NAME on --listen: it subscribes to every --from
ADDRESS=TOPIC (repeat the flag) and handles their messages as a pipeline
does.`
	}
	cmd := &cobra.Command{
		Use:     kind + " NAME",
		Short:   short,
		Long:    long,
		Example: "  palm " + kind + " my_pipeline --from 127.0.0.1:5555=my_server --listen 127.0.0.1:5560 --exec foo='sed \"s/^/and I pipelined /\"'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ups, err := s.upstreams(kind == "pipeline")
			if err != nil {
				return err
			}
			opts, err := s.pipelineOptions(c, cmd)
			if err != nil {
				return err
			}
			var (
				comp      servable
				handle    func(string, palm.Handler)
				stageOpts = convert(opts, func(o pipeline.CommonOption) pipeline.StageOption { return o })
			)
			if kind == "sink" {
				sink, err := pipeline.NewSink(args[0], ups, stageOpts...)
				if err != nil {
					return usageError{err}
				}
				comp, handle = sink, sink.Handle
			} else {
				p, err := pipeline.NewPipeline(args[0], ups[0], stageOpts...)
				if err != nil {
					return usageError{err}
				}
				comp, handle = p, p.Handle
			}
			closeAll, err := s.functions(c, cmd, handle)
			if err != nil {
				return err
			}
			defer closeAll()
			return comp.ListenAndServe(cmd.Context(), s.listen)
		},
	}
	s.flags(c, cmd.Flags(), addr, "pipelined", "from", "exec")
	return cmd
}

func newMasterVerb(c *common, kind string) *cobra.Command {
	var s serving
	addr, long := "127.0.0.1:5559", `master runs a Master named NAME on --listen: clients send it messages, and
workers ('palm worker', or any gRPC worker) connect to it and take them as
tasks. Its functions are whatever its workers serve.`
	if kind == "hub" {
		addr, long = "127.0.0.1:5561", `hub runs a Hub named NAME on --listen: a master that takes its messages
from the component at --from ADDRESS=TOPIC instead of from clients, and
hands them to the workers that connect to it.`
	}
	cmd := &cobra.Command{
		Use:   kind + " NAME",
		Short: map[string]string{"master": "Run a master that spreads messages over workers", "hub": "Run a hub: a master in the middle of a pipeline"}[kind],
		Long:  long,
		Example: map[string]string{
			"master": "  palm master server --listen 127.0.0.1:5559\n  palm worker worker1 --master 127.0.0.1:5559 --exec foo='tr a-z A-Z'",
			"hub":    "  palm hub hub --from 127.0.0.1:5555=server --listen 127.0.0.1:5561",
		}[kind],
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := s.masterOptions(c, cmd)
			if err != nil {
				return err
			}
			if kind == "hub" {
				ups, err := s.upstreams(true)
				if err != nil {
					return err
				}
				h, err := master.NewHub(args[0], ups[0], convert(opts, func(o master.CommonOption) master.HubOption { return o })...)
				if err != nil {
					return usageError{err}
				}
				return h.ListenAndServe(cmd.Context(), s.listen)
			}
			masterOpts := convert(opts, func(o master.CommonOption) master.Option { return o })
			if s.http != "" {
				masterOpts = append(masterOpts, master.HTTP(s.http))
			}
			m, err := master.New(args[0], masterOpts...)
			if err != nil {
				return usageError{err}
			}
			return m.ListenAndServe(cmd.Context(), s.listen)
		},
	}
	what := []string{"pipelined"}
	if kind == "hub" {
		what = append(what, "from")
	}
	s.flags(c, cmd.Flags(), addr, what...)
	if kind == "master" {
		s.httpFlag(cmd.Flags())
	}
	return cmd
}

// httpFlag adds --http, the address of the component's HTTP gateway.
func (s *serving) httpFlag(f *pflag.FlagSet) {
	f.StringVar(&s.http, "http", "", "also serve HTTP on this address: GET or POST /FUNCTION with the payload as the body answers with the reply (see docs/http.md)")
}

func newWorkerVerb(c *common) *cobra.Command {
	var (
		s          serving
		masterAt   string
		messages   int
		httpListen string
	)
	cmd := &cobra.Command{
		Use:   "worker NAME",
		Short: "Run a worker whose functions are commands",
		Long: `worker runs a Worker named NAME for the master (or hub) at --address: it
takes tasks, runs the --exec command of the function each names, and sends
the results back. It waits for a master that is not up yet, logging why it
cannot reach it, and connects again by itself when the master goes away.
--concurrency is both the tasks it asks for at once and, in the
long-running modes, the processes it keeps.`,
		Example: `  palm worker worker1 --address 127.0.0.1:5559 --exec foo='sed "s/^/worker1 processed /"'
  palm worker worker2 --address 10.0.0.5:5559 --cacert ca.pem --token "$WORKER_TOKEN" --exec-mode frames --concurrency 4 --exec foo=./foo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if masterAt != "" {
				if cmd.Flags().Changed("address") {
					return usageError{fmt.Errorf("--master is the old name of --address: give one of them")}
				}
				c.address = masterAt
			}
			logger, err := c.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			shared, err := c.security.options(c.address)
			if err != nil {
				return err
			}
			opts := append(convert(shared, func(o palm.Option) worker.Option { return o }), palm.WithLogger(logger), palm.WithMaxMessageSize(s.maxMessageSize), palm.WithStopTimeout(s.stopTimeout), worker.Credit(s.concurrency),
				palm.WithKeepalive(s.keepalive, s.keepaliveWait))
			if messages > 0 {
				opts = append(opts, worker.Messages(messages))
			}
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			if s.metrics != "" {
				served, err := serveWorkerMetrics(ctx, s.metrics, logger, &opts)
				if err != nil {
					return err
				}
				defer func() { stop(); <-served }()
			}
			w, err := worker.New(args[0], c.address, opts...)
			if err != nil {
				return usageError{err}
			}
			closeAll, err := s.functions(c, cmd, w.Handle)
			if err != nil {
				return err
			}
			defer closeAll()
			if httpListen != "" {
				return serveWorkerHTTP(ctx, httpListen, w, logger, s.stopTimeout)
			}
			return w.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&httpListen, "http-listen", "", "serve the functions over HTTP on this address (palm.v1.FunctionService, Connect protocol) instead of connecting to a master: a worker for a component's HTTP workers (see docs/http.md)")
	c.talkFlags(f, "127.0.0.1:5559", "address of the master or hub")
	c.logFlag(f)
	s.connectionFlags(f)
	f.StringVar(&masterAt, "master", "", "the old name of --address")
	f.MarkDeprecated("master", "use --address")
	f.IntVar(&s.maxMessageSize, "max-message-size", 4<<20, "largest payload, in bytes (and largest answer read from a command)")
	f.DurationVar(&s.stopTimeout, "stop-timeout", 10*time.Second, "on SIGINT or SIGTERM, finish the tasks held for at most this long, then kill their commands")
	f.IntVar(&messages, "messages", 0, "stop after this many tasks (default: never)")
	s.execFlags(f)
	return cmd
}

// execHelp documents the --exec protocols.
func execHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "exec",
		Short: "How --exec commands get messages and answer",
		Long: `--exec FUNCTION=COMMAND serves FUNCTION with COMMAND, run by sh -c, in the
mode --exec-mode names:

once (default)  A new process for each message. The payload is its standard
                input; what it prints on standard output is the reply (nothing:
                no reply). A non-zero exit fails the message, with what it
                printed on standard error as the reason.

lines           One long-running process per --concurrency slot. Each payload
                is written to its standard input as one line; it must answer
                each with one line on standard output (flush it). Payloads with
                a newline fail; use frames for binary data.

frames          One long-running process per slot, for any bytes. Each payload
                is written as a 4-byte big-endian length and the bytes; the
                process answers with a status byte (0 reply, 1 error, 2 no
                reply), a 4-byte big-endian length and the bytes (the reply, or
                the error's text).

A long-running process that exits or breaks the protocol fails the message
it held and is started again for the next one. Its standard error goes to
the log.

Bounds. Each command runs in a process group of its own. A message whose
command has not answered within --exec-timeout (default 5m) fails with
DeadlineExceeded, and one whose component stops first, or whose client
goes away, fails with Canceled; either way the command's whole process
group is killed (SIGKILL), and in the long-running modes the next message
gets a fresh process. In once mode, whatever the command left running when
it exits is killed too: nothing outlives its message, or its component.
Payloads are written while answers are read, so any size goes through. An
answer longer than --max-message-size fails the message with
ResourceExhausted and is read no further (in once and lines mode the
process is killed; in frames mode the frame is skipped). At most 4 KiB of
standard error is kept as a reason.`,
	}
}

// serveWorkerMetrics serves a worker's metrics, its gRPC client metrics and
// the Go runtime's and the process's, at http://addr/metrics until ctx
// ends; the channel is closed when it has stopped. It adds the registry to
// opts.
func serveWorkerMetrics(ctx context.Context, addr string, logger hclog.Logger, opts *[]worker.Option) (<-chan struct{}, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address: %w", err)
	}
	reg := metrics.NewRegistry()
	*opts = append(*opts, palm.WithMetrics(reg))
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := metrics.Serve(ctx, lis, reg, logger); err != nil {
			logger.Error("serving metrics failed", "error", err)
		}
	}()
	return served, nil
}

// serveWorkerHTTP serves w's functions over HTTP on addr until ctx ends,
// then stops within stopTimeout.
func serveWorkerHTTP(ctx context.Context, addr string, w *worker.Worker, logger hclog.Logger, stopTimeout time.Duration) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--http-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(worker.HTTPHandler(w))
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	if tcp, ok := lis.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		logger.Warn("serving HTTP in plaintext beyond this machine: put the worker behind a server or platform that terminates TLS", "address", lis.Addr().String())
	}
	logger.Info("serving the functions over HTTP", "address", lis.Addr().String(), "path", "/palm.v1.FunctionService/Call")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := srv.Shutdown(stop); err != nil {
		srv.Close()
	}
	<-served
	logger.Info("stopped")
	return nil
}
