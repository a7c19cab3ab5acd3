// Package master holds palm's parallel servers: the Master, which spreads
// the messages its clients send over any number of workers (package
// worker), and the Hub, a master in the middle of a pipeline that takes its
// messages from the component before it instead of from clients.
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
// attempts, as an error for that message at the client. A message for a
// function no connected worker serves is answered NOT_FOUND at once
// (WaitForWorkers makes the master wait for such a worker), a task held
// past TaskTimeout goes to another worker, and a message whose client's
// deadline passes while it waits is answered DEADLINE_EXCEEDED. Scatter,
// Gather and HandleStream are the original's hooks, as Go iterators.
//
// A Hub subscribes to a component before it and hands what it receives to
// its workers; a client reaches the results by subscribing to the Hub
// (client.SubAddress):
//
//	hub, err := master.NewHub("hub", master.Upstream{Address: "127.0.0.1:5555", Topic: "server"})
//	err = hub.ListenAndServe(ctx, "127.0.0.1:5561")
//
// One gRPC listener serves the Gateway (clients; not on a Hub), Dispatch
// (workers), the Publisher (results sent on by topic), the Cache (shared by
// the clients and the workers), health and reflection.
package master
