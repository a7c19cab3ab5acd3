// Command bench measures palm beside raw grpc-go and NATS in one process and
// one run, with palm's defaults and its public API only, and prints a table
// of messages per second with ratios against the baselines of the same run.
//
//	cd bench && go run .
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"
)

// maxN and maxRuns bound what the flags may ask for.
const (
	maxN    = 10_000_000
	maxRuns = 20
)

// A shape is one way of moving messages, started once per payload size.
type shape struct {
	name  string
	start func() (*system, error)
}

// shapes in the order the table shows them. The first two are the
// baselines the ratios refer to.
var shapes = []shape{
	{"nats queue group of 2", startNATS},
	{"raw grpc stream, 1/Send", func() (*system, error) { return startRaw(1) }},
	{"raw grpc stream, 64/Send", func() (*system, error) { return startRaw(64) }},
	{"palm master + 2 workers", startMaster},
	{"palm standalone server", startServer},
}

const (
	natsShape = "nats queue group of 2"
	rawShape  = "raw grpc stream, 1/Send"
)

// A payload size and how many messages each shape moves at it.
type size struct {
	name  string
	bytes int
	n     int
}

// config is what one benchmark run does.
type config struct {
	sizes   []size
	runs    int
	timeout time.Duration // bounds each measurement
}

// row is one line of the table: a shape at a payload, its rate in each run.
type row struct {
	shape, payload string
	rates          []float64 // msg/s, one per run
}

func (r row) median() float64 {
	s := slices.Clone(r.rates)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// run measures every shape at every size, cfg.runs times, the runs of one
// size interleaved shape by shape so that all see the same machine.
func run(ctx context.Context, cfg config) ([]row, error) {
	var rows []row
	for _, sz := range cfg.sizes {
		payload := make([]byte, sz.bytes)
		for i := range payload {
			payload[i] = byte(i)
		}
		var systems []*system
		stopAll := func() {
			for _, s := range systems {
				s.stop()
			}
		}
		for _, sh := range shapes {
			s, err := sh.start()
			if err != nil {
				stopAll()
				return nil, fmt.Errorf("start %s: %w", sh.name, err)
			}
			systems = append(systems, s)
		}
		measure := func(s *system, n int) (time.Duration, error) {
			mctx, cancel := context.WithTimeout(ctx, cfg.timeout)
			defer cancel()
			return s.move(mctx, payload, n)
		}
		// Warm every connection up.
		warm := max(1, min(sz.n/10, 5000))
		for i, s := range systems {
			if _, err := measure(s, warm); err != nil {
				stopAll()
				return nil, fmt.Errorf("warm %s at %s: %w", shapes[i].name, sz.name, err)
			}
		}
		first := len(rows)
		for _, sh := range shapes {
			rows = append(rows, row{shape: sh.name, payload: sz.name})
		}
		for range cfg.runs {
			for i, s := range systems {
				runtime.GC()
				d, err := measure(s, sz.n)
				if err != nil {
					stopAll()
					return nil, fmt.Errorf("%s at %s: %w", shapes[i].name, sz.name, err)
				}
				rows[first+i].rates = append(rows[first+i].rates, float64(sz.n)/d.Seconds())
			}
		}
		stopAll()
	}
	return rows, nil
}

// printTable writes the table: each row's min, median and max, and its median
// against the NATS and raw-stream medians at the same payload.
func printTable(w io.Writer, rows []row) {
	base := map[string]float64{}
	for _, r := range rows {
		base[r.shape+"|"+r.payload] = r.median()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shape\tpayload\tmin msg/s\tmedian msg/s\tmax msg/s\tvs nats\tvs raw 1/Send\t")
	for _, r := range rows {
		med := r.median()
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.2fx\t%.2fx\t\n", r.shape, r.payload,
			slices.Min(r.rates), med, slices.Max(r.rates),
			med/base[natsShape+"|"+r.payload], med/base[rawShape+"|"+r.payload])
	}
	tw.Flush()
}

func main() {
	n := flag.Int("n", 0, fmt.Sprintf("messages each shape moves per run (0: 200000 at 100 B, 50000 at 10 KiB; at most %d)", maxN))
	runs := flag.Int("runs", 3, fmt.Sprintf("runs of each shape (at most %d)", maxRuns))
	timeout := flag.Duration("timeout", 2*time.Minute, "bound on each measurement")
	flag.Parse()
	if *n < 0 || *n > maxN || *runs < 1 || *runs > maxRuns || *timeout <= 0 {
		fmt.Fprintf(os.Stderr, "bench: -n must be in [0, %d], -runs in [1, %d], -timeout positive\n", maxN, maxRuns)
		os.Exit(2)
	}
	sizes := []size{{"100 B", 100, 200_000}, {"10 KiB", 10 << 10, 50_000}}
	if *n > 0 {
		for i := range sizes {
			sizes[i].n = *n
		}
	}
	fmt.Printf("%s %s/%s, GOMAXPROCS %d, %d runs, n = %d at 100 B and %d at 10 KiB\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), *runs, sizes[0].n, sizes[1].n)
	rows, err := run(context.Background(), config{sizes: sizes, runs: *runs, timeout: *timeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	printTable(os.Stdout, rows)
}
