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
// memory.
//
// Components are built from parts with package compose, which also serves
// the gRPC services parts register (Service), drains them (Drainer) and
// shows what they describe (Describer). The standalone server is three
// parts and a cache:
//
//	c, _ := compose.New("server")
//	c.Inbound("Pull", parts.NewGateway(parts.GatewayConfig{}), "Functions")
//	c.Outbound("Functions", &parts.Functions{Lookup: lookup}, "Pub")
//	c.Outbound("Pub", &parts.Replies{}, "")
//	c.Bypass("Cache", &parts.Cache{})
//	err := c.ListenAndServe(ctx, "127.0.0.1:5555")
package parts
