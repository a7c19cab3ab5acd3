// Package parts is the router core palm's servers are composed from.
//
// As in the original PALM, a server is a Router and a set of named parts
// running in one process. Inbound parts take messages from outside (clients,
// upstream components) and send them into the router; outbound parts take
// messages from the router (run user functions, hand tasks to workers,
// publish results) and may send what they produce on along their own route;
// bypass parts (the cache) run beside the router without touching it.
// Routes are fixed when parts are registered: each part sends to the part
// its route names.
//
// Every outbound part has a bounded inbox; a part that sends into a full
// inbox waits, so a slow part slows the parts before it instead of growing
// memory. The standalone server is three parts:
//
//	r := parts.NewRouter(logger)
//	r.Inbound("gateway", gateway, "call")   // GatewayService: clients in
//	r.Outbound("call", functions, "reply")  // user functions
//	r.Outbound("reply", replies, "")        // replies back to each client
//	err := r.Run(ctx)
package parts
