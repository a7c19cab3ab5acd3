package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"iter"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/worker"
)

// A worker with one function, run against a stand-in for a palm master
// that sends it three tasks and prints what comes back.
func Example() {
	master, stop := newMaster()
	defer stop()

	w, err := worker.New("worker1", palmtest.Target, master.lis.Option(), palm.WithLogLevel(hclog.Off))
	if err != nil {
		panic(err)
	}
	w.HandleFunc("foo", func(ctx context.Context, msg []byte) ([]byte, error) {
		return append([]byte("you sent me "), msg...), nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	s := <-master.sessions
	fmt.Println("hello from", s.hello.GetName(), "serving", s.hello.GetFunctions())
	s.send(task(1, "master.foo", "a"), task(2, "master.foo", "b"), task(3, "master.foo", "c"))
	s.wait(func() bool { return len(s.dones) == 3 })
	s.locked(func() {
		for id := uint64(1); id <= 3; id++ {
			fmt.Printf("task %d: %s\n", id, s.results[id][0].GetPayload())
		}
	})
	cancel()
	fmt.Println("Run:", <-done)
	// Output:
	// hello from worker1 serving [foo]
	// task 1: you sent me a
	// task 2: you sent me b
	// task 3: you sent me c
	// Run: <nil>
}

// A function with several results per task, the original's MuxWorker.
func ExampleWorker_HandleMuxFunc() {
	master, stop := newMaster()
	defer stop()

	w, err := worker.New("worker1", palmtest.Target, master.lis.Option(), palm.WithLogLevel(hclog.Off))
	if err != nil {
		panic(err)
	}
	w.HandleMuxFunc("split", func(ctx context.Context, msg []byte) iter.Seq2[[]byte, error] {
		return func(yield func([]byte, error) bool) {
			for _, word := range bytes.Fields(msg) {
				if !yield(word, nil) {
					return
				}
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	s := <-master.sessions
	s.send(task(1, "master.split", "one task, three results"))
	s.wait(func() bool { return len(s.dones) == 1 })
	s.locked(func() {
		for _, r := range s.results[1] {
			fmt.Printf("%s\n", r.GetPayload())
		}
	})
	cancel()
	<-done
	// Output:
	// one
	// task,
	// three
	// results
}

// A worker whose function waits on something slow (a database, another
// service) runs more calls at once than the default, and one whose
// function must run alone holds one task at a time.
func ExampleConcurrency() {
	busy, err := worker.New("io-bound", "127.0.0.1:5559", worker.Concurrency(64))
	if err != nil {
		panic(err)
	}
	alone, err := worker.New("one-at-a-time", "127.0.0.1:5559", worker.Credit(1))
	if err != nil {
		panic(err)
	}
	_, err = worker.New("bad", "127.0.0.1:5559", worker.Concurrency(0))
	fmt.Println(busy.Name(), alone.Name())
	fmt.Println(err)
	// Output:
	// io-bound one-at-a-time
	// worker: Concurrency(0): the concurrency must be between 1 and 2147483647
}
