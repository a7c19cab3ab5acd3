package parts

import palmv1 "github.com/gopalm/palm/gen/palm/v1"

// Prepare takes the component's name, message size limit and logger where
// the dispatcher was built without them: a task's results may total four
// messages, and tasks go to a worker in responses of one message at most.
func (d *Dispatcher) Prepare(env Env) error {
	if d.cfg.Master == "" {
		d.cfg.Master = env.Name
	}
	if env.MaxMessageSize > 0 {
		if d.cfg.MaxResultBytes == DefaultMaxResultBytes {
			d.cfg.MaxResultBytes = 4 * env.MaxMessageSize
		}
		if d.cfg.MaxSendBytes == DefaultMaxSendBytes {
			d.cfg.MaxSendBytes = env.MaxMessageSize
		}
	}
	if d.cfg.Logger == nil && env.Logger != nil {
		d.cfg.Logger, d.logger = env.Logger, env.Logger
	}
	return nil
}

// RegisterServices serves the dispatcher as the component's
// DispatchService, where workers connect.
func (d *Dispatcher) RegisterServices(r Registrar) {
	r.RegisterService(&palmv1.DispatchService_ServiceDesc, d)
}

// Describe reports the workers, the tasks waiting and held, and those
// handed out again.
func (d *Dispatcher) Describe(desc *Description) {
	desc.Gauge("workers_connected", "Workers connected now.", d.Workers)
	desc.Gauge("tasks_queued", "Tasks waiting for a worker.", d.Queued)
	desc.Gauge("tasks_in_flight", "Tasks held by workers, not yet done.", d.heldTasks)
	desc.Counter("tasks_redelivered", "Tasks handed to another worker after the one holding them left.", d.redeliveries)
	desc.Workers = d.workerList
}
