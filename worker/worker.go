package worker

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/backoff"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/names"
	"github.com/gopalm/palm/internal/registry"
	"github.com/gopalm/palm/kv"
)

// Default reconnection backoff bounds; see Backoff.
const (
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
)

// Option is an option a Worker takes: palm's shared options (palm.Option)
// and this package's options.
type Option interface{ config.ForWorker }

// option is an option of this package.
type option struct {
	config.Worker
	config.Setting[settings]
}

// settings are the options only a Worker takes.
type settings struct {
	credit      int // 0: adaptive
	concurrency int // 0: the default
	messages    int
	backoffMin  time.Duration
	backoffMax  time.Duration
}

// DefaultMaxCredit is the most tasks a Worker with an adaptive credit (the
// default) holds at once.
const DefaultMaxCredit = 1024

// Credit fixes how many tasks a Worker holds at once: the credit it grants
// its master. A task is held from the moment the master sends it until the
// worker has reported it done; the tasks held and not running wait in the
// worker's queue, in order. Without Concurrency, Credit also sets the most
// handler calls run at the same time, n. n must be at least 1.
//
// Default: an adaptive credit. The worker holds the tasks it runs at once
// (Concurrency) plus as many as it completes in about 5 ms, measured as it
// works, up to DefaultMaxCredit tasks and about 32 MiB of task payload: a
// fast worker holds enough tasks to keep its master's batches full, a slow
// one hardly more than it runs, so that the tasks waiting go to whichever
// worker is free. Fix the credit for a function whose calls take very
// different times, or to hold exactly one task at a time (Credit(1)).
func Credit(n int) Option {
	return option{Setting: func(s *settings) { s.credit = n }}
}

// Concurrency sets the most handler calls a Worker runs at the same time;
// a handler that waits (on a database, another service) may want more than
// the default, a handler that must run alone Concurrency(1). n must be at
// least 1. Default: the fixed Credit when one is set, otherwise twice
// GOMAXPROCS at the time New is called, so that CPU-bound handlers keep
// every processor busy.
func Concurrency(n int) Option {
	return option{Setting: func(s *settings) { s.concurrency = n }}
}

// Messages makes a Worker stop after it has completed n tasks, like the
// original worker's messages argument: it takes no more than n tasks in
// all, finishes them, reports them, and Run returns nil. Tasks abandoned
// because a stream broke do not count. n must not be negative. Default: 0,
// no limit.
func Messages(n int) Option {
	return option{Setting: func(s *settings) { s.messages = n }}
}

// Backoff sets how long a Worker waits before it connects to its master
// again after a failed attempt or an ended stream: the first wait is about
// min, each failure in a row doubles it up to max, and a session that the
// master welcomed starts the count again. Each wait is picked at random
// between half the delay and the delay, so that workers cut off together do
// not come back together. The same bounds govern gRPC's own reconnection
// of the underlying connection. 0 < min <= max. Default: 100 ms to 5 s
// (DefaultBackoffMin, DefaultBackoffMax).
func Backoff(min, max time.Duration) Option {
	return option{Setting: func(s *settings) { s.backoffMin, s.backoffMax = min, max }}
}

// Worker is the worker of a palm master, the original's Worker and
// MuxWorker in one: it connects to the master, takes tasks by credit, calls
// the function each task names and sends back its results.
//
// Register functions with Handle, HandleFunc, HandleMux or HandleMuxFunc,
// then call Run once. Registering is safe at any time, also while running
// (a function registered while connected is served at once, and announced
// to the master when the worker next connects). Every method is safe for
// concurrent use by multiple goroutines; handlers are called from several
// goroutines at once (up to Concurrency).
type Worker struct {
	name    string
	address string
	cfg     *config.Config
	set     settings
	logger  hclog.Logger

	handlers *registry.Registry[entry]
	started  atomic.Bool
	cache    atomic.Pointer[cacheClient] // set while Run runs
}

// cacheClient holds the master's cache while Run runs.
type cacheClient struct{ kv.Store }

// entry is a registered function: exactly one of one and mux is set.
type entry struct {
	one palm.Handler
	mux MuxHandler
}

// New returns a Worker named name for the master whose DispatchService
// listens at address (a gRPC target such as "127.0.0.1:5556" or
// "dns:///master:5556"). New does no I/O: Run connects.
//
// The name is used in logs (the worker logs as a sub-logger of that name)
// and sent to the master; it must be non-empty valid UTF-8 and need not be
// unique. Options: Credit, Concurrency, Messages and Backoff; palm.WithTLS to dial with
// TLS (default: plaintext); palm.WithDialOptions, applied after palm's own;
// palm.WithMaxMessageSize, the largest result payload or cache value sent
// and the largest task accepted (default 4 MiB); palm.WithStopTimeout, the
// bound of a graceful stop (default 10 s); palm.WithLogger and
// palm.WithLogLevel. New returns an error naming the problem for an invalid
// argument or option value.
func New(name, address string, opts ...Option) (*Worker, error) {
	if err := names.Worker(name); err != nil {
		return nil, fmt.Errorf("worker: invalid name %q: %w", name, err)
	}
	if address == "" {
		return nil, errors.New("worker: the master's address is empty")
	}
	s := settings{
		credit:      -1,
		concurrency: -1,
		backoffMin:  DefaultBackoffMin,
		backoffMax:  DefaultBackoffMax,
	}
	cfg, err := config.Apply(opts, &s)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	switch {
	case s.credit != -1 && (s.credit < 1 || s.credit > math.MaxInt32):
		return nil, fmt.Errorf("worker: Credit(%d): the credit must be between 1 and %d", s.credit, math.MaxInt32)
	case s.concurrency != -1 && (s.concurrency < 1 || s.concurrency > math.MaxInt32):
		return nil, fmt.Errorf("worker: Concurrency(%d): the concurrency must be between 1 and %d", s.concurrency, math.MaxInt32)
	case s.messages < 0:
		return nil, fmt.Errorf("worker: Messages(%d): the number of messages must not be negative", s.messages)
	case s.backoffMin <= 0 || s.backoffMax < s.backoffMin:
		return nil, fmt.Errorf("worker: Backoff(%v, %v): need 0 < min <= max", s.backoffMin, s.backoffMax)
	}
	switch {
	case s.concurrency == -1 && s.credit != -1:
		s.concurrency = s.credit
	case s.concurrency == -1:
		s.concurrency = 2 * runtime.GOMAXPROCS(0)
	}
	if s.credit == -1 {
		s.credit = 0 // adaptive
	}
	w := &Worker{name: name, address: address, cfg: cfg, set: s, logger: cfg.NamedLogger(name)}
	w.handlers = registry.New[entry]("worker")
	return w, nil
}

// Name is the worker's name.
func (w *Worker) Name() string { return w.name }

// Logger is the worker's logger, named after the worker, for use in
// functions (the original's self.logger).
func (w *Worker) Logger() hclog.Logger { return w.logger }

// Handle registers h as the function named function: tasks whose current
// step is `server.function` (whatever the server) call it, and a non-nil
// payload it returns is sent back as the task's one result. It panics if
// the name is empty, is not UTF-8 or holds a dot or white space, if h is
// nil, or if the name is taken, as net/http's ServeMux does for such
// programming errors.
func (w *Worker) Handle(function string, h palm.Handler) {
	if h == nil {
		panic(fmt.Sprintf("worker: nil handler for function %q", function))
	}
	w.register(function, entry{one: palm.Chain(h, config.Middlewares[palm.Middleware](w.cfg)...)})
}

// HandleFunc registers f as the function named function; see Handle.
func (w *Worker) HandleFunc(function string, f func(ctx context.Context, payload []byte) ([]byte, error)) {
	if f == nil {
		panic(fmt.Sprintf("worker: nil handler for function %q", function))
	}
	w.Handle(function, palm.HandlerFunc(f))
}

// HandleMux registers h as the function named function, one that produces
// any number of results per task (the original's MuxWorker); see
// MuxHandler. It panics on the same programming errors as Handle.
func (w *Worker) HandleMux(function string, h MuxHandler) {
	if h == nil {
		panic(fmt.Sprintf("worker: nil handler for function %q", function))
	}
	w.register(function, entry{mux: h})
}

// HandleMuxFunc registers f as the function named function; see HandleMux.
func (w *Worker) HandleMuxFunc(function string, f func(ctx context.Context, payload []byte) iter.Seq2[[]byte, error]) {
	if f == nil {
		panic(fmt.Sprintf("worker: nil handler for function %q", function))
	}
	w.HandleMux(function, MuxHandlerFunc(f))
}

func (w *Worker) register(function string, e entry) { w.handlers.Add(function, e) }

func (w *Worker) lookup(function string) (entry, bool) { return w.handlers.Lookup(function) }

// functions returns the names of the registered functions, sorted.
func (w *Worker) functions() []string { return w.handlers.Names() }

// Run connects to the master and works until ctx ends, or until the worker
// has completed as many tasks as Messages allows; then it returns nil.
//
// It opens DispatchService.Work, says hello with the registered functions
// and its credit, and runs every task it is sent, in the order sent, at
// most Concurrency at once, on goroutines started once per stream (none per
// task), reporting results and completion as the protocol in
// dispatch.proto says. A task whose deadline passes while it waits in the
// worker's queue ends with DeadlineExceeded without calling its function. A task's function is the step at the
// message's stage; its server part is not checked. A function the worker
// does not have ends the task with NotFound; a function that returns an
// error ends it with that error's gRPC code (Unknown for an error that
// carries none); a panic is logged with its stack and ends the task with
// Internal; the worker keeps going in every case.
//
// A handler's context carries the values of ctx but is not cancelled with
// it: it is cancelled when the stream its task came on breaks, or when a
// graceful stop runs out of time.
//
// When the stream breaks or the master cannot be reached, Run connects
// again after a backoff (see Backoff), for as long as ctx lasts; the tasks
// held on the broken stream are abandoned (their handlers' contexts are
// cancelled and their results are never sent: the master gives those tasks
// to other workers), and Run waits for their handlers to return, at most the
// stop timeout, before it connects again.
//
// When the master drains the stream (it is shutting down), the worker
// finishes and reports the tasks it holds, half-closes, and connects again
// after a backoff: the master may come back, or another may answer at the
// same address. A worker's life is bounded by its ctx and Messages, never
// by one master's.
//
// When ctx ends, Run stops gracefully: it grants no more credit, finishes
// the tasks it holds (and any the master sends against credit already
// granted), sends their results, half-closes the stream and waits for the
// master to end it. The whole stop is bounded by the stop timeout
// (palm.WithStopTimeout, default 10 s); past it, handlers' contexts are
// cancelled and the stream is cut, and Run waits at most the stop timeout
// again for handlers that ignore their context. Stopping after Messages
// tasks goes the same way.
//
// Run returns an error, without connecting, when no function is
// registered, when it was called before, or when the address cannot be
// parsed as a gRPC target. It may be called once.
func (w *Worker) Run(ctx context.Context) error {
	if w.handlers.Len() == 0 {
		return fmt.Errorf("worker %s: no function registered; register functions with Handle or HandleMux before Run", w.name)
	}
	if !w.started.CompareAndSwap(false, true) {
		return fmt.Errorf("worker %s: Run called twice", w.name)
	}
	conn, err := grpc.NewClient(w.address, w.dialOptions()...)
	if err != nil {
		return fmt.Errorf("worker %s: %w", w.name, err)
	}
	defer conn.Close()
	w.cache.Store(&cacheClient{kv.NewClient(conn)})
	defer w.cache.Store(nil)

	dispatch := palmv1.NewDispatchServiceClient(conn)
	led := w.newLedger()
	b := backoff.New(w.set.backoffMin, w.set.backoffMax)
	w.logger.Info("connecting to the master", "address", w.address, "credit", w.creditName(), "concurrency", w.set.concurrency)
	for {
		welcomed, err := w.session(ctx, dispatch, led)
		if ctx.Err() != nil || led.exhausted() {
			w.logger.Info("stopped", "completed", led.completed)
			return nil
		}
		var wait time.Duration
		if welcomed {
			b.Reset()
			wait = b.Wait()
			w.logger.Debug("connecting again", "address", w.address, "retry_in", wait)
		} else {
			wait = b.Fail()
			level := hclog.Debug
			if b.Failures() == 1 {
				level = hclog.Warn
			}
			w.logger.Log(level, "cannot reach the master; trying again", "address", w.address, "error", err, "retry_in", wait, "attempts", b.Failures())
		}
		if !backoff.Sleep(ctx, wait) {
			w.logger.Info("stopped", "completed", led.completed)
			return nil
		}
	}
}

// newLedger returns the ledger of a Run: a fixed window of Credit tasks, or
// an adaptive one from the concurrency to DefaultMaxCredit.
func (w *Worker) newLedger() *ledger {
	if w.set.credit > 0 {
		return newLedger(w.set.credit, w.set.credit, w.set.messages)
	}
	return newLedger(w.set.concurrency, max(w.set.concurrency, DefaultMaxCredit), w.set.messages)
}

// creditName describes the credit for the log.
func (w *Worker) creditName() string {
	if w.set.credit > 0 {
		return strconv.Itoa(w.set.credit)
	}
	return "adaptive"
}

// dialOptions are the worker's gRPC dial options: palm's shared ones, the
// worker's backoff, then the user's.
func (w *Worker) dialOptions() []grpc.DialOption {
	return w.cfg.Dial(
		// The worker's Backoff also paces gRPC's reconnection of the
		// connection underneath, so that a master that comes back is
		// found within the worker's bound rather than gRPC's (120 s).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: w.set.backoffMin, Multiplier: 2, Jitter: 0.2, MaxDelay: w.set.backoffMax},
			MinConnectTimeout: 20 * time.Second,
		}),
	)
}
