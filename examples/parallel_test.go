package examples_test

import (
	"strings"
	"testing"
)

// startCluster starts a master program and two workers named worker1 and
// worker2, and waits until the master serves.
func startCluster(t *testing.T, masterDir, workerDir string) (m, w1, w2 *proc) {
	t.Helper()
	m = start(t, masterDir)
	m.waitFor(t, "serving")
	w1 = start(t, workerDir, "worker1")
	w2 = start(t, workerDir, "worker2")
	m.waitFor(t, "worker joined")
	m.waitFor(t, "worker joined")
	return m, w1, w2
}

func lines(out string) []string { return strings.Split(strings.TrimRight(out, "\n"), "\n") }

// Servers: ten messages over two workers; both names appear.
func TestParallel(t *testing.T) {
	m := runParallel(t, "parallel/master")
	m.stop(t)
}

// Building a master server from its components: the composed master serves
// the parallel example's workers and client as the master does.
func TestMasterFromParts(t *testing.T) {
	m := runParallel(t, "master-from-parts")
	m.stop(t)
	for _, want := range []string{"starting inbound part: part=Pull connects_to=WorkerPush", "starting outbound part: part=WorkerPush connects_to=Pub", "starting bypass part: part=Cache"} {
		if !strings.Contains(m.output(), want) {
			t.Errorf("the master's log lacks %q:\n%s", want, m.output())
		}
	}
}

// runParallel runs the parallel example's workers and client against the
// master program in masterDir, checks what the client prints, and stops
// the workers.
func runParallel(t *testing.T, masterDir string) *proc {
	m, w1, w2 := startCluster(t, masterDir, "parallel/worker")
	out := lines(runClient(t, "parallel/client"))
	if len(out) != 10 {
		t.Fatalf("%d replies:\n%s", len(out), strings.Join(out, "\n"))
	}
	seen := map[string]bool{}
	for _, l := range out {
		if l != "worker1 processed a message" && l != "worker2 processed a message" {
			t.Fatalf("reply %q", l)
		}
		seen[l] = true
	}
	if len(seen) != 2 {
		t.Errorf("one worker did everything:\n%s", strings.Join(out, "\n"))
	}
	w1.stop(t)
	w2.stop(t)
	return m
}
func checkCached(t *testing.T, out []string, replies int) {
	t.Helper()
	if len(out) != replies+1 || out[0] != " cached data " {
		t.Fatalf("client printed %d lines:\n%s", len(out), strings.Join(out, "\n"))
	}
	for _, l := range out[1:] {
		if l != "worker1 cached data a message" && l != "worker2 cached data a message" && l != "final message" {
			t.Fatalf("reply %q", l)
		}
	}
}

// Cache: the client's value reaches the workers through the master's cache.
func TestCache(t *testing.T) {
	startCluster(t, "cache/master", "cache/worker")
	checkCached(t, lines(runClient(t, "cache/client")), 10)
}

// Scatter: ten messages, thirty replies.
func TestScatter(t *testing.T) {
	startCluster(t, "scatter/master", "cache/worker")
	checkCached(t, lines(runClient(t, "cache/client")), 30)
}

// Gather: thirty replies, the last of which is "final message".
func TestGather(t *testing.T) {
	startCluster(t, "gather/master", "cache/worker")
	out := lines(runClient(t, "cache/client"))
	checkCached(t, out, 30)
	if out[len(out)-1] != "final message" {
		t.Fatalf("last reply %q", out[len(out)-1])
	}
}

// Logging: the master at WARN shows its own error line and nothing of
// INFO; each worker logs at INFO every ten messages it processes.
func TestLogging(t *testing.T) {
	// The master logs nothing below WARN: wait for the workers instead.
	m := start(t, "logging/master")
	w1 := start(t, "logging/worker", "worker1")
	w2 := start(t, "logging/worker", "worker2")
	w1.waitFor(t, "connected to the master")
	w2.waitFor(t, "connected to the master")
	out := lines(runClient(t, "cache/client"))
	checkCached(t, out, 30)
	m.waitFor(t, "Changing the payload of the message")
	w1.stop(t)
	w2.stop(t)
	m.stop(t)
	if log := m.output(); !strings.Contains(log, "[ERROR] server: Changing the payload of the message") || strings.Contains(log, "[INFO]") {
		t.Errorf("master log:\n%s", log)
	}
	if !strings.Contains(w1.output()+w2.output(), "[INFO]  worker") || !strings.Contains(w1.output()+w2.output(), ": Processed 10 messages") {
		t.Errorf("worker logs:\n%s\n%s", w1.output(), w2.output())
	}
}
