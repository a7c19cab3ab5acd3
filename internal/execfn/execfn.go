// Package execfn makes palm functions out of commands: for the palm
// command's --exec flags, so that a function can be written in any
// language without gRPC.
//
// Three modes:
//
//   - once: a new process per message, `sh -c COMMAND`, the payload on its
//     standard input and the reply on its standard output; a non-zero exit
//     fails the message with its standard error as the reason, and no
//     output sends no reply.
//   - lines: one long-running process per slot of concurrency; each payload
//     is written as one line, and the process answers each with one line.
//     Payloads must not hold newlines.
//   - frames: one long-running process per slot; each payload is written as
//     a frame (4-byte big-endian length, then the bytes), and the process
//     answers each with a status byte (0: reply, 1: error, 2: no reply) and
//     a frame (the reply, or the error's text; empty for no reply).
//
// A long-running process that dies, or answers out of protocol, fails the
// message it held and is started again for the next one.
//
// Bounds. Every command runs in a process group of its own. A message's
// command that has not answered within the timeout (Timeout, default 5
// minutes) fails the message with DEADLINE_EXCEEDED; one whose message's
// context ends first (the component stops, the caller goes away) fails it
// with CANCELED. Either way its whole process group is killed (SIGKILL),
// and in the long-running modes the next message gets a fresh process. In
// once mode, whatever is left of the group when the message is done is
// killed too, so that no process outlives its message. The payload is
// written while the answer is read, so no size deadlocks the pipes. An
// answer is read up to the output limit (MaxOutput, default 4 MiB, the
// message size limit) and no further: a longer one fails the message with
// RESOURCE_EXHAUSTED (in once and lines mode the process is killed; in
// frames mode the frame is skipped and the process kept). Each process is
// reaped by exactly one goroutine, and the wait for its pipes after it
// exits is bounded (exec.Cmd.WaitDelay).
package execfn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/names"
)

// Mode is how a command is run.
type Mode string

// The modes.
const (
	Once   Mode = "once"
	Lines  Mode = "lines"
	Frames Mode = "frames"
)

// ParseMode checks a mode's name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Once, Lines, Frames:
		return m, nil
	}
	return "", fmt.Errorf("unknown exec mode %q: once, lines or frames", s)
}

// Spec is one --exec flag: a function name and its command.
type Spec struct {
	Function, Command string
}

// ParseSpec parses `function=command`.
func ParseSpec(s string) (Spec, error) {
	fn, cmd, ok := strings.Cut(s, "=")
	if !ok || fn == "" || strings.TrimSpace(cmd) == "" {
		return Spec{}, fmt.Errorf("--exec %q: expected FUNCTION=COMMAND", s)
	}
	if err := names.Function(fn); err != nil {
		return Spec{}, fmt.Errorf("--exec %q: %w", s, err)
	}
	return Spec{Function: fn, Command: cmd}, nil
}

// Defaults of the options.
const (
	// DefaultTimeout is how long a command may take over one message.
	DefaultTimeout = 5 * time.Minute
	// DefaultMaxOutput is the largest answer read, palm's default
	// message size limit.
	DefaultMaxOutput = 4 << 20
)

const (
	// maxStderr bounds the error text kept from a command's standard
	// error, and the text of an error frame.
	maxStderr = 4 << 10
	// waitDelay bounds the wait for a process's pipes once it has exited
	// or been killed: a process that escaped its group may hold them.
	waitDelay = 2 * time.Second
	// reapBound bounds the wait for a killed process to be reaped.
	reapBound = waitDelay + 3*time.Second
	// closeGrace is how long Close lets a long-running process exit by
	// itself once its standard input is closed.
	closeGrace = time.Second
	// writeGrace is how long the write of a payload may outlast its
	// answer: a process answers a message only after reading all of it,
	// so a write still going on is a process out of protocol.
	writeGrace = time.Second
)

// Option sets an option of Handler.
type Option func(*Func)

// Timeout bounds the time a command takes over one message (default
// DefaultTimeout); d must be positive.
func Timeout(d time.Duration) Option {
	return func(f *Func) { f.timeout = d }
}

// MaxOutput bounds the answer read from a command for one message, in
// bytes (default DefaultMaxOutput); n must be positive.
func MaxOutput(n int) Option {
	return func(f *Func) { f.maxOutput = n }
}

// Handler returns the palm.Handler that runs spec's command in mode, at
// most concurrency at once (long-running modes keep that many processes).
// Close releases the processes. Options that are not positive keep their
// defaults.
func Handler(spec Spec, mode Mode, concurrency int, logger hclog.Logger, opts ...Option) *Func {
	if concurrency < 1 {
		concurrency = 1
	}
	f := &Func{
		spec:      spec,
		mode:      mode,
		logger:    logger.With("function", spec.Function),
		slots:     make(chan *proc, concurrency),
		procs:     map[*proc]struct{}{},
		groups:    map[*os.Process]struct{}{},
		timeout:   DefaultTimeout,
		maxOutput: DefaultMaxOutput,
	}
	for _, o := range opts {
		o(f)
	}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.maxOutput <= 0 {
		f.maxOutput = DefaultMaxOutput
	}
	for range concurrency {
		f.slots <- nil // started on first use
	}
	return f
}

// Func is a function backed by a command. Its methods may be called
// concurrently.
type Func struct {
	spec      Spec
	mode      Mode
	logger    hclog.Logger
	timeout   time.Duration
	maxOutput int
	slots     chan *proc // a slot per allowed call; long-running modes keep their process in it

	mu     sync.Mutex
	closed bool
	procs  map[*proc]struct{}       // long-running processes alive
	groups map[*os.Process]struct{} // once-mode processes running
}

// Handle runs the command for one message's payload.
func (f *Func) Handle(ctx context.Context, m *palmv1.PalmMessage) ([]byte, error) {
	return f.Call(ctx, m.GetPayload())
}

// Call runs the command for payload. It returns when the command has
// answered, or within a few seconds of ctx ending or the timeout passing.
func (f *Func) Call(ctx context.Context, payload []byte) ([]byte, error) {
	var p *proc
	select {
	case p = <-f.slots:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if f.mode == Once {
		defer func() { f.slots <- nil }()
		return f.once(ctx, payload)
	}
	reply, p, err := f.longRunning(ctx, p, payload)
	f.slots <- p
	return reply, err
}

// errTimedOut is the cause of a message's context that ran out of time.
var errTimedOut = errors.New("the command ran out of time")

// errTooLarge is the cause of a once-mode message's context whose answer
// went past the limit.
var errTooLarge = errors.New("the command's answer is too large")

// ended is the error of a message whose context ended first: the timeout,
// or the caller's end.
func (f *Func) ended(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errTimedOut) {
		return status.Errorf(codes.DeadlineExceeded, "the command did not answer within %v (raise --exec-timeout if it needs longer); it was killed", f.timeout)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, "the message's deadline passed before the command answered; it was killed")
	}
	return status.Error(codes.Canceled, "the message was cancelled (its component is stopping, or its caller went away) before the command answered; it was killed")
}

func (f *Func) tooLarge() error {
	return status.Errorf(codes.ResourceExhausted, "the command's answer is larger than the message size limit of %d bytes (--max-message-size)", f.maxOutput)
}

func (f *Func) shuttingDown() error {
	return status.Error(codes.Unavailable, "the function is shutting down")
}

// command is `sh -c COMMAND` in a process group of its own; with a
// context, the group is killed when it ends.
func (f *Func) command(ctx context.Context) *exec.Cmd {
	var cmd *exec.Cmd
	if ctx != nil {
		cmd = exec.CommandContext(ctx, "sh", "-c", f.spec.Command)
		cmd.Cancel = func() error { killGroup(cmd.Process); return nil }
	} else {
		cmd = exec.Command("sh", "-c", f.spec.Command)
	}
	ownGroup(cmd)
	cmd.WaitDelay = waitDelay
	return cmd
}

// once runs a process for one payload. It is the process's one reaper.
func (f *Func) once(ctx context.Context, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, f.timeout, errTimedOut)
	defer cancel()
	cctx, overflow := context.WithCancelCause(ctx)
	defer overflow(nil)
	cmd := f.command(cctx)
	cmd.Stdin = bytes.NewReader(payload) // written by exec while stdout is read
	stdout := &capped{max: f.maxOutput, full: func() { overflow(errTooLarge) }}
	stderr := &limited{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return nil, f.ended(ctx)
		}
		return nil, status.Errorf(codes.Internal, "the command could not start: %v", err)
	}
	if !f.track(cmd.Process) {
		killGroup(cmd.Process)
		cmd.Wait()
		return nil, f.shuttingDown()
	}
	err := cmd.Wait()
	// What it left behind. A group's id is not handed out again while any
	// of its processes lives, and pids are reused only after the kernel
	// has cycled through all of them, so this reaches only the command's.
	killGroup(cmd.Process)
	f.untrack(cmd.Process)
	switch {
	case errors.Is(context.Cause(cctx), errTooLarge):
		return nil, f.tooLarge()
	case err != nil && ctx.Err() != nil:
		return nil, f.ended(ctx)
	case err != nil && f.isClosed():
		return nil, f.shuttingDown()
	case errors.Is(err, exec.ErrWaitDelay):
		f.logger.Warn("the command exited but left a process holding its output; the group was killed", "pid", cmd.Process.Pid)
	case err != nil:
		return nil, commandError(err, stderr.String())
	}
	if len(stdout.buf) == 0 {
		return nil, nil
	}
	return stdout.buf, nil
}

func (f *Func) track(p *os.Process) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.groups[p] = struct{}{}
	return true
}

func (f *Func) untrack(p *os.Process) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.groups, p)
}

func (f *Func) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func commandError(err error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if msg == "" {
			msg = exit.String()
		} else {
			msg = fmt.Sprintf("%s (%s)", msg, exit)
		}
		return status.Error(codes.Unknown, msg)
	}
	return status.Errorf(codes.Internal, "the command could not run: %v", err)
}

// proc is a long-running process. It is used by one call at a time (the
// holder of its slot); kill and the reaper may run at any time.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *limited
	exited chan struct{} // closed by the reaper, the one caller of Wait
}

func (f *Func) start() (*proc, error) {
	cmd := f.command(nil)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, stdout: bufio.NewReaderSize(out, 64<<10), exited: make(chan struct{}),
		stderr: &limited{max: maxStderr, tee: f.logger.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Info})}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, status.Errorf(codes.Internal, "the command could not start: %v", err)
	}
	go func() {
		// The reaper. Wait closes stdin and stdout once the process has
		// exited, which ends any read or write still going on.
		cmd.Wait()
		close(p.exited)
	}()
	f.mu.Lock()
	closed := f.closed
	if !closed {
		f.procs[p] = struct{}{}
	}
	f.mu.Unlock()
	if closed {
		p.kill()
		p.reap(f.logger)
		return nil, f.shuttingDown()
	}
	f.logger.Debug("started the command", "pid", cmd.Process.Pid, "mode", f.mode)
	return p, nil
}

// kill kills the process's group. It may be called at any time, again.
func (p *proc) kill() { killGroup(p.cmd.Process) }

// reap waits, within a bound, for the reaper to have reaped the process.
func (p *proc) reap(logger hclog.Logger) {
	t := time.NewTimer(reapBound)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		logger.Error("a killed command was not reaped in time; giving up on it", "pid", p.cmd.Process.Pid, "waited", reapBound)
	}
}

// discard kills the process and forgets it: its slot starts a new one.
func (f *Func) discard(p *proc) {
	p.kill()
	p.reap(f.logger)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.procs, p)
}

// longRunning sends payload to the slot's process (starting one if
// needed) and reads its answer; a process that fails, times out or is
// cancelled is killed and its slot emptied.
func (f *Func) longRunning(ctx context.Context, p *proc, payload []byte) ([]byte, *proc, error) {
	if f.mode == Lines && bytes.ContainsAny(payload, "\n") {
		return nil, p, status.Error(codes.InvalidArgument, "the payload holds a newline, which the lines mode cannot send; use --exec-mode frames")
	}
	if f.mode == Frames && uint64(len(payload)) > 1<<32-1 {
		return nil, p, status.Error(codes.InvalidArgument, "the payload is too large for a frame (4 GiB)")
	}
	if p == nil {
		var err error
		if p, err = f.start(); err != nil {
			return nil, nil, err
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, f.timeout, errTimedOut)
	defer cancel()
	unhook := context.AfterFunc(ctx, p.kill)
	reply, err := f.exchange(p, payload)
	if !unhook() {
		f.discard(p)
		return nil, nil, f.ended(ctx)
	}
	var broken *brokenError
	if errors.As(err, &broken) {
		if broken.code == codes.ResourceExhausted {
			f.logger.Warn("the command's answer is over the limit; it is killed and started again for the next message", "limit", f.maxOutput)
		} else {
			f.logger.Warn("the command broke the protocol or died; it is started again for the next message", "error", err)
		}
		f.discard(p)
		return nil, nil, status.Error(broken.code, broken.msg)
	}
	return reply, p, err
}

// exchange writes payload to p while it reads p's answer. When it returns,
// the write is over.
func (f *Func) exchange(p *proc, payload []byte) ([]byte, error) {
	wrote := make(chan error, 1)
	go func() { wrote <- p.send(f.mode, payload) }()
	var (
		reply []byte
		err   error
	)
	if f.mode == Lines {
		reply, err = p.line(f.maxOutput)
	} else {
		reply, err = p.frame(f.maxOutput)
	}
	var broken *brokenError
	if !errors.As(err, &broken) {
		// An answer (a reply, or an error for this message alone).
		t := time.NewTimer(writeGrace)
		defer t.Stop()
		select {
		case werr := <-wrote:
			if werr != nil {
				return nil, p.broken("writing to the command", werr)
			}
			return reply, err
		case <-t.C:
			err = &brokenError{code: codes.Unknown, msg: "the command answered before it read the whole message"}
		}
	}
	// The process failed: kill it, which ends the write.
	p.kill()
	t := time.NewTimer(reapBound)
	defer t.Stop()
	select {
	case <-wrote:
	case <-t.C:
		f.logger.Error("the write to a killed command did not end in time", "pid", p.cmd.Process.Pid)
	}
	return nil, err
}

// send writes one message: a line, or a frame.
func (p *proc) send(mode Mode, payload []byte) error {
	var err error
	if mode == Lines {
		if _, err = p.stdin.Write(payload); err == nil {
			_, err = p.stdin.Write([]byte{'\n'})
		}
		return err
	}
	head := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	if _, err = p.stdin.Write(head); err == nil {
		_, err = p.stdin.Write(payload)
	}
	return err
}

// brokenError is a failure of the process itself, not of one message.
type brokenError struct {
	code codes.Code
	msg  string
}

func (e *brokenError) Error() string { return e.msg }

func (p *proc) broken(what string, err error) error {
	msg := fmt.Sprintf("%s: %v", what, err)
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		msg += "; its standard error said: " + s
	}
	return &brokenError{code: codes.Unknown, msg: msg}
}

// line reads one line of at most max bytes (and its newline).
func (p *proc) line(max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := p.stdout.ReadSlice('\n')
		n := len(line) + len(chunk)
		if err == nil {
			n-- // the newline
		}
		if n > max {
			return nil, &brokenError{code: codes.ResourceExhausted, msg: fmt.Sprintf("the command's answer is larger than the message size limit of %d bytes (--max-message-size)", max)}
		}
		line = appendCapped(line, chunk, max+1)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
		default:
			return nil, p.broken("reading the command's answer", err)
		}
	}
}

// appendCapped appends b to buf, growing it no larger than limit.
func appendCapped(buf, b []byte, limit int) []byte {
	if need := len(buf) + len(b); need > cap(buf) {
		grown := make([]byte, len(buf), min(max(2*cap(buf), need, 512), max(limit, need)))
		copy(grown, buf)
		buf = grown
	}
	return append(buf, b...)
}

// Frame statuses.
const (
	frameReply   = 0
	frameError   = 1
	frameNothing = 2
)

// frame reads one answer frame of at most max bytes; a longer one is
// skipped.
func (p *proc) frame(max int) ([]byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(p.stdout, h[:]); err != nil {
		return nil, p.broken("reading the command's answer", err)
	}
	if h[0] > frameNothing {
		return nil, p.broken("reading the command's answer", fmt.Errorf("unknown status byte %d", h[0]))
	}
	n := binary.BigEndian.Uint32(h[1:])
	if uint64(n) > uint64(max) {
		if _, err := io.CopyN(io.Discard, p.stdout, int64(n)); err != nil {
			return nil, p.broken("reading the command's answer", err)
		}
		return nil, status.Errorf(codes.ResourceExhausted, "the command answered a frame of %d bytes, larger than the message size limit of %d bytes (--max-message-size)", n, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(p.stdout, body); err != nil {
		return nil, p.broken("reading the command's answer", err)
	}
	switch h[0] {
	case frameError:
		if len(body) > maxStderr {
			body = append(body[:maxStderr:maxStderr], "…"...)
		}
		return nil, status.Error(codes.Unknown, string(body))
	case frameNothing:
		return nil, nil
	}
	return body, nil
}

// Close stops the processes: a long-running one's standard input is
// closed, and it is killed with its group if it has not exited a second
// later; a once-mode one is killed with its group. Calls that follow fail
// with UNAVAILABLE.
func (f *Func) Close() {
	f.mu.Lock()
	f.closed = true
	procs, groups := f.procs, f.groups
	f.procs, f.groups = map[*proc]struct{}{}, map[*os.Process]struct{}{}
	f.mu.Unlock()
	for g := range groups {
		killGroup(g)
	}
	var wg sync.WaitGroup
	for p := range procs {
		wg.Go(func() {
			p.stdin.Close()
			t := time.NewTimer(closeGrace)
			defer t.Stop()
			select {
			case <-p.exited:
			case <-t.C:
			}
			p.kill() // and whatever it left behind
			p.reap(f.logger)
		})
	}
	wg.Wait()
}

// capped keeps what is written to it up to max bytes; past that it calls
// full and fails the write, so that the copy feeding it stops.
type capped struct {
	buf  []byte
	max  int
	over bool
	full func()
}

func (c *capped) Write(b []byte) (int, error) {
	if c.over || len(c.buf)+len(b) > c.max {
		if !c.over {
			c.over = true
			c.full()
		}
		return 0, errTooLarge
	}
	c.buf = appendCapped(c.buf, b, c.max)
	return len(b), nil
}

// limited keeps the last max bytes written to it, the freshest reason a
// command gave (and copies all to tee).
type limited struct {
	mu  sync.Mutex
	buf []byte
	max int
	tee io.Writer
}

func (l *limited) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(b) >= l.max {
		l.buf = append(l.buf[:0], b[len(b)-l.max:]...)
	} else {
		l.buf = append(l.buf, b...)
		if over := len(l.buf) - l.max; over > 0 {
			l.buf = append(l.buf[:0], l.buf[over:]...)
		}
	}
	if l.tee != nil {
		l.tee.Write(b)
	}
	return len(b), nil
}

func (l *limited) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

var _ palm.Handler = (*Func)(nil)
