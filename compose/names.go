package compose

// The names palm's components give their parts: the original's, which the
// start-up log and InfoService show. A Server is Pull → Functions → Pub; a
// Pipeline or a Sink, Sub → Functions → Pub; a Master, Pull → WorkerPush
// [→ Gather] → Pub; a Hub, Sub → WorkerPush [→ Gather] → Pub; each with a
// Cache beside the router.
const (
	// Pull is the parts.Gateway, where clients' messages come in (the
	// original's Pull and Rep services).
	Pull = "Pull"
	// HTTP is the parts.HTTPGateway, where HTTP requests come in (the
	// original's HTTP gateway).
	HTTP = "HTTP"
	// Sub is the parts.Subscriber, where a stage's messages come in from
	// the components before it (the original's Sub connection).
	Sub = "Sub"
	// WorkerPush is the parts.Dispatcher, which hands tasks to workers and
	// takes their results back (the original's WorkerPush and WorkerPull
	// services, one stream in palm).
	WorkerPush = "WorkerPush"
	// Functions is the parts.Functions of a Server, a Pipeline or a Sink.
	Functions = "Functions"
	// Gather is the parts.Gather of a master with a gather hook.
	Gather = "Gather"
	// Pub is the parts.Replies, which sends results back to their clients
	// or publishes them on the component's PublisherService (the
	// original's Pub service).
	Pub = "Pub"
	// Cache is the parts.Cache, the component's CacheService.
	Cache = "Cache"
)
