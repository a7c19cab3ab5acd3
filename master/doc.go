// Package master holds palm's parallel servers: the Master, which spreads
// the messages its clients send over any number of workers (package
// worker), and, as palm grows, the Hub.
//
// A master needs only a name; its functions are whatever its workers serve:
//
//	m, err := master.New("server")
//	err = m.ListenAndServe(ctx, "127.0.0.1:5559")
//
// and a worker needs only the master's address:
//
//	w, err := worker.New("worker1", "127.0.0.1:5559")
//	w.HandleFunc("foo", foo)
//	err = w.Run(ctx)
//
// Workers take tasks against the credit they grant, round-robin among those
// ready; a worker that dies hands its unfinished tasks to the others, and a
// task that kills every worker that takes it fails after a bounded number of
// attempts, as an error for that message at the client. Scatter, Gather and
// HandleStream are the original's hooks, as Go iterators.
//
// One gRPC listener serves the Gateway (clients), Dispatch (workers), the
// Cache (shared by the clients and the workers), health and reflection.
package master
