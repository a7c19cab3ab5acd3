package dispatch

import "testing"

// BenchmarkStep is one message of one task through the core as the master
// steps it: Submit, Ready (the task handed out), then the worker's result
// with its done and a credit, Ready (the route that completes it).
func BenchmarkStep(b *testing.B) {
	c := New(Config{Capacity: 4096})
	c.Step(Event{Kind: Join, At: t0, Worker: 1, Functions: []string{"f"}})
	c.Step(Event{Kind: Join, At: t0, Worker: 2, Functions: []string{"f"}})
	c.Step(Event{Kind: Report, At: t0, Worker: 1, Credit: 64})
	c.Step(Event{Kind: Report, At: t0, Worker: 2, Credit: 64})
	c.Ready(t0)
	c.Advance()
	tasks := make([]Task, 1024)
	msgs := make([]Message, 1024)
	in := make([]*Task, 1)
	results, dones := make([]Result, 1), make([]Finish, 1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		t, m := &tasks[i%len(tasks)], &msgs[i%len(msgs)]
		*t, *m = Task{Function: "f"}, Message{}
		in[0] = t
		c.Step(Event{Kind: Submit, At: t0, Message: m, Tasks: in})
		a := c.Ready(t0).Assigned[0]
		c.Advance()
		results[0], dones[0] = Result{Task: a.Task.ID, Bytes: 100}, Finish{Task: a.Task.ID}
		c.Step(Event{Kind: Report, At: t0, Worker: a.Worker, Results: results, Dones: dones, Credit: 1})
		if rd := c.Ready(t0); len(rd.Outputs) != 1 || !rd.Outputs[0].Done {
			b.Fatalf("outputs %+v", rd.Outputs)
		}
		c.Advance()
	}
}
