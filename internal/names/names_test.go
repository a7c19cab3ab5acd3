package names

import (
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	long := strings.Repeat("n", MaxLen+1)
	longID := strings.Repeat("t", MaxID+1)
	tests := []struct {
		name  string
		check func(string) error
		value string
		says  []string // nil: valid
	}{
		{"component", func(s string) error { return Component("sink", s) }, "my_sink-2", nil},
		{"component of the limit", func(s string) error { return Component("sink", s) }, long[:MaxLen], nil},
		{"empty component", func(s string) error { return Component("sink", s) }, "", []string{"the sink name is empty", "give it a name"}},
		{"dotted component", func(s string) error { return Component("server", s) }, "a.b", []string{"server name contains a dot", `use "-" or "_"`}},
		{"spaced component", func(s string) error { return Component("server", s) }, "a b", []string{"contains white space", `use "-" or "_"`}},
		{"tabbed component", func(s string) error { return Component("server", s) }, "a\tb", []string{"white space"}},
		{"component with a wide space", func(s string) error { return Component("server", s) }, "a\u00a0b", []string{"white space"}},
		{"component not UTF-8", func(s string) error { return Component("master", s) }, "a\xff", []string{"master name is not valid UTF-8"}},
		{"long component", func(s string) error { return Component("master", s) }, long, []string{"129 bytes", "at most 128 bytes"}},
		{"session", func(s string) error { return Component("session", s) }, "", []string{"the session name is empty"}},

		{"function", Function, "echo", nil},
		{"empty function", Function, "", []string{"the function name is empty"}},
		{"dotted function", Function, "srv.echo", []string{"contains a dot", `"resize" for the step "server.resize"`}},
		{"spaced function", Function, "e cho", []string{"white space"}},
		{"function with a newline", Function, "echo\n", []string{"white space"}},
		{"function not UTF-8", Function, "\xff", []string{"not valid UTF-8"}},
		{"long function", Function, long, []string{"at most 128 bytes"}},

		{"worker", Worker, "worker 1.a", nil},
		{"empty worker", Worker, "", []string{"the worker name is empty"}},
		{"worker not UTF-8", Worker, "\xff", []string{"UTF-8"}},
		{"long worker", Worker, longID, []string{"1025 bytes", "at most 1024 bytes"}},

		{"topic", Topic, "my_server.x y", nil},
		{"empty topic", Topic, "", []string{"the topic is empty", "a topic is non-empty"}},
		{"topic not UTF-8", Topic, "t\xff", []string{"not valid UTF-8"}},
		{"long topic", Topic, longID, []string{"1025 bytes", "at most 1024 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(tt.value)
			if tt.says == nil {
				if err != nil {
					t.Fatalf("%q: %v; want valid", tt.value, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%q: valid; want an error saying %q", tt.value, tt.says)
			}
			for _, w := range tt.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q: %v; want it to say %q", tt.value, err, w)
				}
			}
		})
	}
}
