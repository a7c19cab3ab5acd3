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

func TestTake(t *testing.T) {
	ch := make(chan int, 10)
	for i := range 5 {
		ch <- i
	}
	var got []int
	if n := Take(ch, 3, func(v int) bool { got = append(got, v); return true }); n != 3 || len(got) != 3 || got[2] != 2 {
		t.Fatalf("Take(max 3) = %d, %v; want 3, [0 1 2]", n, got)
	}
	got = got[:0]
	if n := Take(ch, 10, func(v int) bool { got = append(got, v); return v != 3 }); n != 1 || got[0] != 3 {
		t.Fatalf("Take stopping at 3 = %d, %v; want 1, [3]", n, got)
	}
	if n := Take(ch, 10, func(int) bool { return true }); n != 1 {
		t.Fatalf("Take of the last value = %d; want 1", n)
	}
	if n := Take(ch, 10, func(int) bool { t.Error("f called on an empty channel"); return true }); n != 0 {
		t.Fatalf("Take of an empty channel = %d; want 0, without waiting", n)
	}
	ch <- 7
	close(ch)
	if n := Take(ch, 10, func(int) bool { return true }); n != 1 {
		t.Fatalf("Take of a closed channel holding one = %d; want 1", n)
	}
	if n := Take(ch, 0, func(int) bool { return true }); n != 0 {
		t.Fatalf("Take(max 0) = %d; want 0", n)
	}
}

func TestFill(t *testing.T) {
	ch := make(chan string, 4)
	ch <- "b"
	ch <- "c"
	ch <- "d"
	buf := Fill([]string{"a"}, ch, 3)
	if len(buf) != 3 || buf[0] != "a" || buf[2] != "c" {
		t.Fatalf("Fill = %v; want [a b c]", buf)
	}
	buf = Fill(buf[:0], ch, 3)
	if len(buf) != 1 || buf[0] != "d" {
		t.Fatalf("Fill of what is left = %v; want [d]", buf)
	}
	if buf = Fill(buf, ch, 1); len(buf) != 1 {
		t.Fatalf("Fill of a full buffer = %v; want it unchanged", buf)
	}
}
