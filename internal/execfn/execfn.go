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
package execfn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
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
	switch {
	case !ok || fn == "" || strings.TrimSpace(cmd) == "":
		return Spec{}, fmt.Errorf("--exec %q: expected FUNCTION=COMMAND", s)
	case strings.ContainsAny(fn, ". \t\n"):
		return Spec{}, fmt.Errorf("--exec %q: the function name %q may hold no dot or space", s, fn)
	}
	return Spec{Function: fn, Command: cmd}, nil
}

// maxStderr bounds the error text kept from a command's standard error.
const maxStderr = 4 << 10

// Handler returns the palm.Handler that runs spec's command in mode, at
// most concurrency at once (long-running modes keep that many processes).
// Close releases the processes.
func Handler(spec Spec, mode Mode, concurrency int, logger hclog.Logger) *Func {
	if concurrency < 1 {
		concurrency = 1
	}
	f := &Func{spec: spec, mode: mode, logger: logger.With("function", spec.Function), slots: make(chan *proc, concurrency)}
	for range concurrency {
		f.slots <- nil // started on first use
	}
	return f
}

// Func is a function backed by a command.
type Func struct {
	spec   Spec
	mode   Mode
	logger hclog.Logger
	slots  chan *proc // a slot per allowed call; long-running modes keep their process in it

	mu     sync.Mutex
	closed bool
	procs  []*proc
}

// Handle runs the command for one message's payload.
func (f *Func) Handle(ctx context.Context, m *palmv1.PalmMessage) ([]byte, error) {
	return f.Call(ctx, m.GetPayload())
}

// Call runs the command for payload.
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
	reply, p, err := f.longRunning(p, payload)
	f.slots <- p
	return reply, err
}

// once runs a process for one payload.
func (f *Func) once(ctx context.Context, payload []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", f.spec.Command)
	cmd.Stdin = bytes.NewReader(payload)
	var stdout bytes.Buffer
	stderr := &limited{max: maxStderr}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		return nil, commandError(err, stderr.String())
	}
	if stdout.Len() == 0 {
		return nil, nil
	}
	return stdout.Bytes(), nil
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

// proc is a long-running process.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *limited
}

func (f *Func) start() (*proc, error) {
	cmd := exec.Command("sh", "-c", f.spec.Command)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, stdout: bufio.NewReaderSize(out, 64<<10), stderr: &limited{max: maxStderr, tee: f.logger.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Info})}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, status.Errorf(codes.Internal, "the command could not start: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		p.stop()
		return nil, status.Error(codes.Unavailable, "the function is shutting down")
	}
	f.procs = append(f.procs, p)
	f.logger.Debug("started the command", "pid", cmd.Process.Pid, "mode", f.mode)
	return p, nil
}

func (p *proc) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// longRunning sends payload to the slot's process (starting one if
// needed) and reads its answer; a process that fails is stopped and its
// slot emptied.
func (f *Func) longRunning(p *proc, payload []byte) ([]byte, *proc, error) {
	if p == nil {
		var err error
		if p, err = f.start(); err != nil {
			return nil, nil, err
		}
	}
	var (
		reply []byte
		err   error
	)
	if f.mode == Lines {
		reply, err = p.line(payload)
	} else {
		reply, err = p.frame(payload)
	}
	var broken *brokenError
	if errors.As(err, &broken) {
		f.logger.Warn("the command broke the protocol or died; it is started again for the next message", "error", err)
		p.stop()
		f.forget(p)
		return nil, nil, status.Error(codes.Unknown, err.Error())
	}
	return reply, p, err
}

func (f *Func) forget(p *proc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, q := range f.procs {
		if q == p {
			f.procs = append(f.procs[:i], f.procs[i+1:]...)
			return
		}
	}
}

// brokenError is a failure of the process itself, not of one message.
type brokenError struct{ msg string }

func (e *brokenError) Error() string { return e.msg }

func (p *proc) broken(what string, err error) error {
	msg := fmt.Sprintf("%s: %v", what, err)
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		msg += "; its standard error said: " + s
	}
	return &brokenError{msg}
}

func (p *proc) line(payload []byte) ([]byte, error) {
	if bytes.ContainsAny(payload, "\n") {
		return nil, status.Error(codes.InvalidArgument, "the payload holds a newline, which the lines mode cannot send; use --exec-mode frames")
	}
	if _, err := p.stdin.Write(append(payload, '\n')); err != nil {
		return nil, p.broken("writing to the command", err)
	}
	line, err := p.stdout.ReadBytes('\n')
	if err != nil {
		return nil, p.broken("reading the command's answer", err)
	}
	return bytes.TrimSuffix(line, []byte("\n")), nil
}

// Frame statuses.
const (
	frameReply   = 0
	frameError   = 1
	frameNothing = 2
)

// maxFrame bounds an answer's frame.
const maxFrame = 64 << 20

func (p *proc) frame(payload []byte) ([]byte, error) {
	head := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	if _, err := p.stdin.Write(append(head, payload...)); err != nil {
		return nil, p.broken("writing to the command", err)
	}
	var h [5]byte
	if _, err := io.ReadFull(p.stdout, h[:]); err != nil {
		return nil, p.broken("reading the command's answer", err)
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame {
		return nil, p.broken("reading the command's answer", fmt.Errorf("a frame of %d bytes (the limit is %d)", n, maxFrame))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(p.stdout, body); err != nil {
		return nil, p.broken("reading the command's answer", err)
	}
	switch h[0] {
	case frameReply:
		return body, nil
	case frameError:
		return nil, status.Error(codes.Unknown, string(body))
	case frameNothing:
		return nil, nil
	}
	return nil, p.broken("reading the command's answer", fmt.Errorf("unknown status byte %d", h[0]))
}

// Close stops the long-running processes: their standard input is closed,
// and those still running a second later are killed.
func (f *Func) Close() {
	f.mu.Lock()
	f.closed = true
	procs := f.procs
	f.procs = nil
	f.mu.Unlock()
	for _, p := range procs {
		p.stop()
	}
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
	l.buf = append(l.buf, b...)
	if over := len(l.buf) - l.max; over > 0 {
		l.buf = append(l.buf[:0], l.buf[over:]...)
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
