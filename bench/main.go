// Command bench measures palm beside raw grpc-go and NATS in one process and
// one run, with palm's defaults and its public API only, and prints a table
// per section with ratios against the baselines of the same run.
//
//	cd bench && go run .                      # every section, 3 runs each
//	cd bench && go run . -only latency,heap   # some sections
//	cd bench && go run . -quick               # every shape once, a few messages
//
// The sections (-only takes their names):
//
//   - throughput: NATS queue group of 2, raw grpc stream at 1 and 64
//     messages per Send, palm master + 2 workers Job, palm standalone server
//     Job, at 100 B and 10 KiB, in msg/s against NATS and raw 1/Send.
//   - scaling: palm master with 1, 2, 4, 8 workers beside NATS queue groups
//     of 1, 2, 4, 8 subscribers; the master with 2 workers and 1, 4, 16
//     clients (a Job each, the messages shared out) beside NATS with 1, 4, 16
//     publishing connections; against NATS in the same shape and against the
//     2-worker, 1-client row.
//   - large: 1 KiB, 100 KiB, 1 MiB through the master + 2 workers and the
//     raw stream (1/Send), in MiB/s, with bytes allocated per message beside
//     the payload size.
//   - latency: sequential round trips of 100 B: a NATS request to a queue
//     group, raw grpc unary, raw grpc stream ping-pong, Eval through the
//     master + 2 workers and through the standalone server; p50 and p99
//     against the NATS request's.
//   - counters: per message of a 100 B Job through the master and through
//     the NATS queue group, for the whole process: CPU, allocations, bytes
//     allocated, read+write syscalls, goroutines created.
//   - heap: the peak heap of a 1,000,000-message Job through a master with
//     two slow workers, against the 64 MiB bound.
//   - pipelines: 64 concurrent Evals on one client through a two-stage
//     pipeline beside 64 Evals on 64 clients; a three-stage pipeline Job
//     beside a single stage's.
//
// Within a section every shape is started once (per payload), warmed up,
// then measured -runs times, shape after shape within each run so that all
// see the same machine; each row shows the min, median and max over the
// runs and its median's ratios. Every measurement is bounded by its count
// and by -timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Bounds on what the flags may ask for.
const (
	maxN    = 10_000_000
	maxRuns = 20
)

// config is what one benchmark run does.
type config struct {
	runs      int
	timeout   time.Duration // bounds each measurement
	n         int           // messages per shape per run of the throughput section at 100 B
	n10k      int           // the same at 10 KiB
	nScaling  int           // messages per shape per run of the scaling section
	nCounters int           // the same of the counters section
	nJobs     int           // the same of the pipelines section's Jobs
	large     []size        // the large section's payloads and counts
	samples   int           // round trips per shape per run of the latency section
	evals     int           // Evals per shape per run of the pipelines section
	heapN     int           // messages of the heap section's Job (0: skip it)
	heapRuns  int
}

// defaults is the full benchmark: about 3 to 5 minutes on 2 cores.
func defaults() config {
	return config{
		runs: 3, timeout: 2 * time.Minute,
		n: 200_000, n10k: 50_000, nScaling: 100_000, nCounters: 100_000, nJobs: 100_000,
		large:   []size{{"1 KiB", 1 << 10, 50_000}, {"100 KiB", 100 << 10, 2_000}, {"1 MiB", 1 << 20, 200}},
		samples: 5_000, evals: 6_400,
		heapN: 1_000_000, heapRuns: 1,
	}
}

// quick runs every shape once with a few messages: a check that all work,
// not a measurement.
func quick() config {
	return config{
		runs: 1, timeout: time.Minute,
		n: 2_000, n10k: 1_000, nScaling: 2_000, nCounters: 2_000, nJobs: 2_000,
		large:   []size{{"1 KiB", 1 << 10, 500}, {"100 KiB", 100 << 10, 50}, {"1 MiB", 1 << 20, 10}},
		samples: 200, evals: 640,
		heapN: 20_000, heapRuns: 1,
	}
}

// A section measures one question and prints one table.
type section struct {
	name, title string
	run         func(context.Context, config) ([]row, error)
	print       func(io.Writer, []row, config)
}

var sections = []section{
	{"throughput", "one Job (NATS: async requests) of N messages per shape, in msg/s", runThroughput, printThroughput},
	{"scaling", "workers (NATS: queue subscribers) and concurrent clients (NATS: publishing connections), in msg/s", runScaling, printScaling},
	{"large", "the master against the raw stream, in bytes/s, and bytes allocated per message", runLarge, printLarge},
	{"latency", "sequential round trips, one at a time", runLatency, printLatency},
	{"counters", "per message of a 100 B Job through the master beside NATS, whole process", runCounters, printCounters},
	{"heap", "peak heap of one long Job through a master with two slow workers", runHeap, printHeap},
	{"pipelines", "concurrent Evals on one client, and pipeline stages, in msg/s", runPipelines, printPipelines},
}

func sectionNames() []string {
	var names []string
	for _, s := range sections {
		names = append(names, s.name)
	}
	return names
}

// selectSections returns the sections only names (comma-separated; empty:
// all), in the order of sections.
func selectSections(only string) ([]section, error) {
	if only == "" {
		return sections, nil
	}
	want := strings.Split(only, ",")
	for _, name := range want {
		if !slices.Contains(sectionNames(), strings.TrimSpace(name)) {
			return nil, fmt.Errorf("no section %q; the sections are %s", name, strings.Join(sectionNames(), ", "))
		}
	}
	var picked []section
	for _, s := range sections {
		if slices.ContainsFunc(want, func(n string) bool { return strings.TrimSpace(n) == s.name }) {
			picked = append(picked, s)
		}
	}
	return picked, nil
}

// machine describes the machine for the header line.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s/%s, %s, %d CPUs, GOMAXPROCS %d, %s", runtime.GOOS, runtime.GOARCH, model, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
}

// runSections runs each section and prints its table as soon as it has it.
// A section that fails is reported and the others still run; the error
// names every failure.
func runSections(ctx context.Context, w io.Writer, picked []section, cfg config) error {
	var failed []string
	for _, s := range picked {
		if s.name == "heap" && cfg.heapN == 0 {
			continue
		}
		t0 := time.Now()
		rows, err := s.run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(w, "\n## %s: FAILED: %v\n", s.name, err)
			failed = append(failed, fmt.Sprintf("%s: %v", s.name, err))
			continue
		}
		fmt.Fprintf(w, "\n## %s: %s (%.0f s)\n", s.name, s.title, time.Since(t0).Seconds())
		s.print(w, rows, cfg)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d sections failed: %s", len(failed), len(picked), strings.Join(failed, "; "))
	}
	return nil
}

func main() {
	cfg := defaults()
	quickFlag := flag.Bool("quick", false, "every shape once with a few messages (for CI): -runs 1, small counts; flags given beside it still apply")
	n := flag.Int("n", 0, "messages per shape per run of every Job at 100 B and 10 KiB: throughput, scaling, counters, pipeline Jobs (default: 200000 at 100 B and 50000 at 10 KiB in throughput, 100000 elsewhere)")
	runs := flag.Int("runs", cfg.runs, "runs of each shape")
	samples := flag.Int("samples", cfg.samples, "round trips per shape per run in the latency section")
	evals := flag.Int("evals", cfg.evals, "Evals per shape per run in the pipelines section (64 at a time)")
	heapN := flag.Int("heap-n", cfg.heapN, "messages of the heap section's Job; 0 skips the section")
	heapRuns := flag.Int("heap-runs", cfg.heapRuns, "runs of the heap section's Job")
	timeout := flag.Duration("timeout", cfg.timeout, "bound on each measurement")
	only := flag.String("only", "", "comma-separated sections to run (default all): "+strings.Join(sectionNames(), ", "))
	flag.Parse()
	picked, err := selectSections(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if *quickFlag {
		cfg = quick()
	}
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "n":
			cfg.n, cfg.n10k, cfg.nScaling, cfg.nCounters, cfg.nJobs = *n, *n, *n, *n, *n
		case "runs":
			cfg.runs = *runs
		case "samples":
			cfg.samples = *samples
		case "evals":
			cfg.evals = *evals
		case "heap-n":
			cfg.heapN = *heapN
		case "heap-runs":
			cfg.heapRuns = *heapRuns
		case "timeout":
			cfg.timeout = *timeout
		}
	})
	if err := cfg.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	fmt.Printf("%s, %s\n%s\n", time.Now().UTC().Format(time.RFC3339), machine(), cfg)
	if err := runSections(context.Background(), os.Stdout, picked, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// String lists the counts.
func (c config) String() string {
	return fmt.Sprintf("%d runs; messages per run: %d at 100 B and %d at 10 KiB (throughput), %d (scaling), %d (counters), %d (pipeline Jobs); "+
		"%d latency samples; %d pipeline Evals; heap Job of %d, %d run(s)",
		c.runs, c.n, c.n10k, c.nScaling, c.nCounters, c.nJobs, c.samples, c.evals, c.heapN, c.heapRuns)
}

// check reports a count out of bounds.
func (c config) check() error {
	for _, v := range []struct {
		name      string
		n, lo, hi int
	}{
		{"-n", c.n, 1, maxN}, {"-n", c.n10k, 1, maxN}, {"-n", c.nScaling, 1, maxN}, {"-n", c.nCounters, 1, maxN}, {"-n", c.nJobs, 1, maxN},
		{"-runs", c.runs, 1, maxRuns}, {"-samples", c.samples, 1, maxN}, {"-evals", c.evals, 1, maxN},
		{"-heap-n", c.heapN, 0, maxN}, {"-heap-runs", c.heapRuns, 1, maxRuns},
	} {
		if v.n < v.lo || v.n > v.hi {
			return fmt.Errorf("%s must be in [%d, %d], not %d", v.name, v.lo, v.hi, v.n)
		}
	}
	if c.timeout <= 0 {
		return fmt.Errorf("-timeout must be positive, not %v", c.timeout)
	}
	return nil
}
