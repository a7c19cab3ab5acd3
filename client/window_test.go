package client

import "testing"

func TestInflight(t *testing.T) {
	tests := []struct {
		name     string
		sent     []uint64
		complete []uint64
		freed    int
		left     int
	}{
		{"nothing", nil, nil, 0, 0},
		{"all", []uint64{1, 2, 3}, []uint64{3, 1, 2}, 3, 0},
		{"some", []uint64{1, 2, 3}, []uint64{2}, 1, 2},
		{"twice", []uint64{1, 2}, []uint64{1, 1}, 1, 1},
		{"never sent", []uint64{1}, []uint64{7}, 0, 1},
		{"before any", nil, []uint64{1}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newInflight()
			for _, s := range tt.sent {
				w.add(s)
			}
			if got := w.complete(tt.complete); got != tt.freed {
				t.Errorf("complete(%v) = %d; want %d", tt.complete, got, tt.freed)
			}
			if got := w.len(); got != tt.left {
				t.Errorf("len() = %d; want %d", got, tt.left)
			}
		})
	}
}
