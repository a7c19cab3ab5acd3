package pack

import "testing"

func TestFits(t *testing.T) {
	tests := []struct {
		name               string
		count, total, size int
		maxCount, maxBytes int
		want               bool
	}{
		{"first always fits", 0, 0, 5000, 64, 1000, true},
		{"room", 3, 300, 100, 64, 1000, true},
		{"exactly full bytes", 3, 900, 100, 64, 1000, true},
		{"over bytes", 3, 901, 100, 64, 1000, false},
		{"count full", 64, 640, 10, 64, 1 << 20, false},
		{"one below count", 63, 630, 10, 64, 1 << 20, true},
		{"the shared limits, count full", MaxMessages, 0, 0, MaxMessages, MaxBytes, false},
		{"the shared limits, bytes full", 1, MaxBytes, 1, MaxMessages, MaxBytes, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fits(tt.count, tt.total, tt.size, tt.maxCount, tt.maxBytes); got != tt.want {
				t.Errorf("Fits(%d, %d, %d, %d, %d) = %v; want %v",
					tt.count, tt.total, tt.size, tt.maxCount, tt.maxBytes, got, tt.want)
			}
		})
	}
}
