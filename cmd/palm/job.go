package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/gopalm/palm/client"
)

func newJob(c *common, stdin io.Reader) *cobra.Command {
	var (
		timeout   time.Duration
		messages  int
		delimited bool
		progress  string
	)
	cmd := &cobra.Command{
		Use:   "job STEP [STEP...]",
		Short: "Send a message per line of standard input and print the replies",
		Long: `job sends one message per payload read from standard input to the steps
given (server.function, one or more: a pipeline) and prints each reply on
standard output as it comes, one per line. With --length-delimited, payloads
and replies are instead a 4-byte big-endian length followed by the bytes,
for binary data.

A message that fails is reported on standard error with its number (the
line it came from) and the job goes on; job exits 1 if any failed. The job
ends when every message has had its reply, or after --messages replies.
On a terminal, standard error shows the progress.

job fails at once when nothing answers at --address, saying why (with
--wait, it waits for the server), and, before sending anything, when the
server is pipelined and no --sub-address says where the replies come from.`,
		Example: `  seq 1000 | palm job --address 127.0.0.1:5559 server.foo
  palm job --address 127.0.0.1:5559 --sub-address 127.0.0.1:5560 server.foo my_pipeline.foo < payloads.txt`,
		Args: cobra.MinimumNArgs(1),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			function := client.Steps(args...)
			server := c.server
			if server == "" {
				server, _, _ = strings.Cut(args[0], ".")
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			cl, err := c.client(server, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := c.checkReplies(ctx, cmd.ErrOrStderr()); err != nil {
				return err
			}
			var opts []client.JobOption
			if messages > 0 {
				opts = append(opts, client.Messages(messages))
			}
			var sent, got, failed atomic.Int64
			payloads := counted(readPayloads(stdin, delimited), &sent)
			stop := showProgress(cmd.ErrOrStderr(), progress, &sent, &got, &failed)
			defer stop()
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			for reply, err := range cl.Job(ctx, function, payloads, opts...) {
				var me *client.MessageError
				switch {
				case errors.As(err, &me):
					failed.Add(1)
					fmt.Fprintf(cmd.ErrOrStderr(), "palm: %v\n", me)
					continue
				case err != nil:
					return err
				}
				got.Add(1)
				if delimited {
					out.Write(binary.BigEndian.AppendUint32(nil, uint32(len(reply))))
					out.Write(reply)
				} else {
					out.Write(reply)
					out.WriteByte('\n')
				}
			}
			if failed.Load() > 0 {
				stop()
				fmt.Fprintf(cmd.ErrOrStderr(), "palm: %d of %d messages failed\n", failed.Load(), sent.Load())
				return errSilent
			}
			return nil
		}),
	}
	f := cmd.Flags()
	c.clientFlags(f)
	c.subFlag(f)
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (default: no limit)")
	f.IntVar(&messages, "messages", 0, "end after this many replies (default: one per message sent)")
	f.BoolVar(&delimited, "length-delimited", false, "payloads and replies are a 4-byte big-endian length and the bytes, instead of lines")
	f.StringVar(&progress, "progress", "auto", "show progress on standard error: auto (on a terminal), always or never")
	return cmd
}

// readPayloads yields the payloads of r: its lines, or length-delimited
// frames. A read error ends the payloads, as the end of input does.
func readPayloads(r io.Reader, delimited bool) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			var p []byte
			if delimited {
				var h [4]byte
				if _, err := io.ReadFull(br, h[:]); err != nil {
					return
				}
				p = make([]byte, binary.BigEndian.Uint32(h[:]))
				if _, err := io.ReadFull(br, p); err != nil {
					return
				}
			} else {
				line, err := br.ReadBytes('\n')
				if len(line) == 0 && err != nil {
					return
				}
				p = []byte(strings.TrimSuffix(string(line), "\n"))
			}
			if !yield(p) {
				return
			}
		}
	}
}

func counted(s iter.Seq[[]byte], n *atomic.Int64) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for p := range s {
			n.Add(1)
			if !yield(p) {
				return
			}
		}
	}
}

// showProgress writes the job's progress to w every 200 ms, on a terminal
// (or always); the returned function stops it and clears the line.
func showProgress(w io.Writer, mode string, sent, got, failed *atomic.Int64) func() {
	on := mode == "always"
	if mode == "auto" {
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				on = true
			}
		}
	}
	if !on {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				rate := float64(got.Load()) / time.Since(start).Seconds()
				fmt.Fprintf(w, "\r\033[Ksent %d, replies %d, failed %d, %.0f/s", sent.Load(), got.Load(), failed.Load(), rate)
			}
		}
	}()
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			close(done)
			<-finished
		}
	}
}
