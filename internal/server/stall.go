package server

import (
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// PublisherStalled makes health report the component's PublisherService
// NOT_SERVING while stalled (a publication waits for a subscriber that has
// not read for half the slow subscriber timeout), and SERVING again after.
// Once the stop has begun, health stays NOT_SERVING.
func (s *Server) PublisherStalled(stalled bool) {
	st := healthpb.HealthCheckResponse_SERVING
	if stalled {
		st = healthpb.HealthCheckResponse_NOT_SERVING
		s.logger.Warn("a subscriber has not read for half the slow subscriber timeout; health reports the PublisherService NOT_SERVING until it reads or is cut")
	}
	s.Health.SetServingStatus(palmv1.PublisherService_ServiceDesc.ServiceName, st)
}
