// Package worker is the worker of a palm master: the original's Worker and
// MuxWorker. A worker connects to its master, takes tasks by credit, calls
// the function each task names and sends back the results; a master spreads
// the messages of its clients over every worker connected to it.
//
//	w, err := worker.New("worker1", "127.0.0.1:5556")
//	w.HandleFunc("foo", func(ctx context.Context, msg []byte) ([]byte, error) {
//		w.Logger().Info("working")
//		return append([]byte("you sent me "), msg...), nil
//	})
//	// A function with several results per message (the MuxWorker):
//	w.HandleMuxFunc("split", func(ctx context.Context, msg []byte) iter.Seq2[[]byte, error] {
//		return func(yield func([]byte, error) bool) {
//			for _, word := range bytes.Fields(msg) {
//				if !yield(word, nil) {
//					return
//				}
//			}
//		}
//	})
//	err = w.Run(ctx) // until ctx ends; reconnects when the master goes away
//
// The worker speaks palm.v1.DispatchService.Work on one stream (see
// dispatch.proto for the protocol a worker in any language follows) and
// uses the master's CacheService over the same connection (Get, Set,
// Delete, Keys). It holds the tasks its credit lets the master send
// (adaptive by default: see Credit) and runs them in order, at most
// Concurrency at a time, on goroutines it starts once; a function's error
// or panic fails that one task and the worker goes on.
package worker
