package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// A row is one figure of a section: a shape at a payload, one value per run
// in the unit metric names.
type row struct {
	shape, payload, metric string
	values                 []float64
	// zeroOK marks a figure that may truthfully be 0 (a counter NATS never
	// moves); every other figure of a working shape is positive.
	zeroOK bool
	// na marks a figure this machine cannot measure: no values.
	na bool
}

func (r row) min() float64 { return slices.Min(r.values) }
func (r row) max() float64 { return slices.Max(r.values) }

func (r row) median() float64 {
	s := slices.Clone(r.values)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// find returns the row of shape and metric at payload, or nil.
func find(rows []row, shape, payload, metric string) *row {
	for i := range rows {
		if rows[i].shape == shape && rows[i].payload == payload && rows[i].metric == metric {
			return &rows[i]
		}
	}
	return nil
}

// mmm formats a row's min, median and max with format, or three "n/a".
func mmm(r row, format string) []string {
	if r.na || len(r.values) == 0 {
		return []string{"n/a", "n/a", "n/a"}
	}
	return []string{fmt.Sprintf(format, r.min()), fmt.Sprintf(format, r.median()), fmt.Sprintf(format, r.max())}
}

// ratio formats the median of r against the median of base, or "-" when
// either is missing or base is 0.
func ratio(r, base *row) string {
	if r == nil || base == nil || r.na || base.na || len(r.values) == 0 || len(base.values) == 0 || base.median() == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r.median()/base.median())
}

// A table prints aligned columns, right-justified, under a header.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, columns ...string) table {
	t := table{tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)}
	t.line(columns...)
	return t
}

func (t table) line(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")+"\t") }

func (t table) flush() { t.tw.Flush() }

// interleave starts every shape, calls warm once on each, then calls each
// on every shape runs times, shape after shape within each run so that all
// see the same machine. It stops every system it started before it
// returns.
func interleave(shapes []shape, runs int, warm, each func(i int, s *system) error) error {
	var systems []*system
	defer func() {
		for _, s := range systems {
			s.stop()
		}
	}()
	for _, sh := range shapes {
		s, err := sh.start()
		if err != nil {
			return fmt.Errorf("start %s: %w", sh.name, err)
		}
		systems = append(systems, s)
	}
	for i, s := range systems {
		if err := warm(i, s); err != nil {
			return fmt.Errorf("warm %s: %w", shapes[i].name, err)
		}
	}
	for range runs {
		for i, s := range systems {
			runtime.GC()
			if err := each(i, s); err != nil {
				return fmt.Errorf("%s: %w", shapes[i].name, err)
			}
		}
	}
	return nil
}

// A sample is one measured move: how many messages, how long, and what the
// whole process spent meanwhile.
type sample struct {
	n     int
	d     time.Duration
	spent counters
}

func (s sample) rate() float64 { return float64(s.n) / s.d.Seconds() }

// rates moves n copies of payload through every shape, runs times
// interleaved, after a warm-up of warm messages, and returns the samples,
// samples[shape][run]. Each move is bounded by timeout.
func rates(ctx context.Context, shapes []shape, runs int, timeout time.Duration, payload []byte, n, warm int) ([][]sample, error) {
	samples := make([][]sample, len(shapes))
	move := func(s *system, n int) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		before := readCounters()
		d, err := s.move(ctx, payload, n)
		spent := readCounters().minus(before)
		return sample{n: n, d: d, spent: spent}, err
	}
	err := interleave(shapes, runs,
		func(_ int, s *system) error { _, err := move(s, warm); return err },
		func(i int, s *system) error {
			sm, err := move(s, n)
			samples[i] = append(samples[i], sm)
			return err
		})
	return samples, err
}

// rateRows turns samples into one msg/s row per shape.
func rateRows(shapes []shape, payload string, samples [][]sample) []row {
	var rows []row
	for i, sh := range shapes {
		r := row{shape: sh.name, payload: payload, metric: "msg/s"}
		for _, s := range samples[i] {
			r.values = append(r.values, s.rate())
		}
		rows = append(rows, r)
	}
	return rows
}

// counters are the whole process's running totals at one moment, or the
// difference of two.
type counters struct {
	cpu        time.Duration // user + system time, from getrusage
	mallocs    uint64        // heap objects allocated (MemStats.Mallocs)
	bytes      uint64        // heap bytes allocated (MemStats.TotalAlloc)
	syscalls   int64         // read and write syscalls (syscr + syscw of /proc/self/io); -1 when unreadable
	goroutines int64         // goroutines created; -1 when the runtime does not count them
}

// goroutinesCreated is the runtime/metrics name of the count of goroutines
// created since the program started (Go 1.26 has it).
const goroutinesCreated = "/sched/goroutines-created:goroutines"

func readCounters() counters {
	var c counters
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c.mallocs, c.bytes = ms.Mallocs, ms.TotalAlloc
	c.syscalls = readSyscalls()
	m := []metrics.Sample{{Name: goroutinesCreated}}
	metrics.Read(m)
	c.goroutines = -1
	if m[0].Value.Kind() == metrics.KindUint64 {
		c.goroutines = int64(m[0].Value.Uint64())
	}
	return c
}

// readSyscalls returns syscr + syscw of /proc/self/io, the whole process's
// read and write system calls, or -1 when they cannot be read.
func readSyscalls() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	var sum int64
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "syscr" && k != "syscw") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return -1
		}
		sum += n
		found++
	}
	if sc.Err() != nil || found != 2 {
		return -1
	}
	return sum
}

// minus returns c - before; a counter unreadable at either end stays -1.
func (c counters) minus(before counters) counters {
	d := counters{cpu: c.cpu - before.cpu, mallocs: c.mallocs - before.mallocs, bytes: c.bytes - before.bytes, syscalls: -1, goroutines: -1}
	if c.syscalls >= 0 && before.syscalls >= 0 {
		d.syscalls = c.syscalls - before.syscalls
	}
	if c.goroutines >= 0 && before.goroutines >= 0 {
		d.goroutines = c.goroutines - before.goroutines
	}
	return d
}
