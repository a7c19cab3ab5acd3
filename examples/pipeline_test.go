package examples_test

import (
	"slices"
	"strings"
	"testing"
)

// What a pipelined stage prints, at INFO, once it is subscribed to an
// upstream: data published before that is lost, so every stage must be
// subscribed before the client sends.
func subscribed(name string) string { return "[INFO]  " + name + ": subscribed" }

// startStage starts a stage that subscribes to one upstream and waits until
// it is subscribed.
func startStage(t *testing.T, dir, name string) *proc {
	t.Helper()
	p := start(t, dir)
	p.waitFor(t, subscribed(name))
	return p
}

// stopAll stops the programs in the order given.
func stopAll(t *testing.T, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		p.stop(t)
	}
}

// checkReplies checks that the client printed n lines, each of them one of
// want.
func checkReplies(t *testing.T, out string, n int, want ...string) []string {
	t.Helper()
	got := lines(out)
	if len(got) != n {
		t.Fatalf("client printed %d lines, want %d:\n%s", len(got), n, out)
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			t.Fatalf("client printed %q, want one of %q:\n%s", l, want, out)
		}
	}
	return got
}

// A pipelined message stream: the server's result goes on to the pipeline,
// whose result reaches the client.
func TestPipeline(t *testing.T) {
	server := start(t, "pipeline/server")
	server.waitFor(t, "serving")
	p := startStage(t, "pipeline/pipeline", "my_pipeline")
	checkReplies(t, runClient(t, "pipeline/client"), 1, "Client got: and I pipelined you sent me a message")
	p.waitFor(t, "[WARN]  my_pipeline: Got a message")
	stopAll(t, p, server)
	if !strings.Contains(server.output(), "[WARN]  my_server: Got a message") {
		t.Errorf("server log:\n%s", server.output())
	}
}

// A tee: both pipelines get the server's result; the echo sends nothing
// on, the other answers the client.
func TestTee(t *testing.T) {
	server := start(t, "tee/server")
	server.waitFor(t, "serving")
	p := startStage(t, "tee/pipeline", "my_pipeline")
	echo := startStage(t, "tee/echo", "my_pipeline")
	checkReplies(t, runClient(t, "tee/client"), 1, "Client got: and I pipelined you sent me a message")
	echo.waitFor(t, "[WARN]  my_pipeline: Just echo, nothing else")
	stopAll(t, p, echo, server)
}

// A tee that controls the stream: the server sends the even messages to the
// pipeline, which answers the client, and the odd ones to the echo, which
// only logs them.
func TestTeeControl(t *testing.T) {
	server := start(t, "tee-control/server")
	server.waitFor(t, "serving")
	p := startStage(t, "tee-control/pipeline", "my_pipeline")
	echo := startStage(t, "tee-control/echo", "my_pipeline")
	checkReplies(t, runClient(t, "tee-control/client"), 5, "Client got: and I pipelined you sent me a message")
	for range 5 {
		echo.waitFor(t, "[INFO]  my_pipeline: Echo: you sent me a message")
	}
	stopAll(t, p, echo, server)
	log := server.output()
	if strings.Count(log, "[INFO]  my_server: Even") != 5 || strings.Count(log, "[INFO]  my_server: Odd") != 5 {
		t.Errorf("server log:\n%s", log)
	}
	if n := strings.Count(p.output(), "Got a message"); n != 5 {
		t.Errorf("the pipeline got %d messages, want 5:\n%s", n, p.output())
	}
}

// A tee with a sink: the even and the odd messages come together again in
// the sink, which answers the client.
func TestSink(t *testing.T) {
	server := start(t, "sink/server")
	server.waitFor(t, "serving")
	even := startStage(t, "sink/even", "my_pipeline")
	odd := startStage(t, "sink/odd", "my_pipeline")
	sink := start(t, "sink/sink")
	sink.waitFor(t, subscribed("my_sink"))
	sink.waitFor(t, subscribed("my_sink"))
	checkReplies(t, runClient(t, "sink/client"), 10, "Client got: and gathered and I pipelined you sent me a message")
	stopAll(t, sink, even, odd, server)
	for _, p := range []*proc{even, odd} {
		if n := strings.Count(p.output(), "Got a message"); n != 5 {
			t.Errorf("a pipeline got %d messages, want 5:\n%s", n, p.output())
		}
	}
}

// A pipeline after a master: the workers' results go on to the pipeline,
// which answers the client.
func TestMasterPipeline(t *testing.T) {
	m := start(t, "master-pipeline/master")
	m.waitFor(t, "serving")
	p := startStage(t, "master-pipeline/pipeline", "my_pipeline")
	w1 := start(t, "master-pipeline/worker", "worker1")
	w2 := start(t, "master-pipeline/worker", "worker2")
	m.waitFor(t, "worker joined")
	m.waitFor(t, "worker joined")
	got := checkReplies(t, runClient(t, "master-pipeline/client"), 10,
		"and I pipelined worker1 processed a message", "and I pipelined worker2 processed a message")
	seen := map[string]bool{}
	for _, l := range got {
		seen[l] = true
	}
	if len(seen) != 2 {
		t.Errorf("one worker did everything:\n%s", strings.Join(got, "\n"))
	}
	stopAll(t, w1, w2, p, m)
}

// A hub after a server: the hub hands the server's result to a worker and
// sends the worker's result to the client.
func TestHub(t *testing.T) {
	server := start(t, "hub/server")
	server.waitFor(t, "serving")
	hub := startStage(t, "hub/hub", "hub")
	w1 := start(t, "hub/worker", "worker1")
	w2 := start(t, "hub/worker", "worker2")
	hub.waitFor(t, "worker joined")
	hub.waitFor(t, "worker joined")
	checkReplies(t, runClient(t, "hub/client"), 1,
		"Client got: worker1 processed you sent me a message", "Client got: worker2 processed you sent me a message")
	stopAll(t, w1, w2, hub, server)
	if !strings.Contains(server.output(), "[WARN]  server: Got a message") {
		t.Errorf("server log:\n%s", server.output())
	}
}
