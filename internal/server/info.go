package server

import (
	"context"
	"slices"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// info serves palm.v1.InfoService from what the component told Observe.
type info struct {
	palmv1.UnimplementedInfoServiceServer
	s *Server
}

func (i info) Info(context.Context, *palmv1.InfoRequest) (*palmv1.InfoResponse, error) {
	src := i.s.source
	resp := &palmv1.InfoResponse{
		Name:      i.s.name,
		Kind:      src.Kind,
		Upstreams: src.Upstreams,
		Counters:  src.Counters(),
		Pipelined: src.Pipelined,
	}
	for name := range i.s.GRPC.GetServiceInfo() {
		resp.Services = append(resp.Services, name)
	}
	slices.Sort(resp.Services)
	for _, p := range src.Parts {
		resp.Parts = append(resp.Parts, &palmv1.PartInfo{Name: p.Name, Kind: p.Kind, Route: p.Route, Services: p.Services, Notes: p.Notes})
	}
	if src.Functions != nil {
		resp.Functions = src.Functions()
	}
	if src.Roster != nil {
		seen := map[string]bool{}
		for _, w := range src.Roster() {
			resp.Workers = append(resp.Workers, &palmv1.WorkerInfo{Name: w.Name, Functions: w.Functions})
			for _, f := range w.Functions {
				if step := i.s.name + "." + f; !seen[step] {
					seen[step] = true
					resp.Functions = append(resp.Functions, step)
				}
			}
		}
		slices.Sort(resp.Functions)
	}
	return resp, nil
}
