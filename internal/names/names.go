// Package names holds the one rule set for the names palm's users give:
// components (a master, a server, a pipeline, a sink, a hub) and a client's
// session, functions, workers and topics. Each check returns an error that
// says what is wrong and how to mend it; callers add who they are and the
// name itself.
//
// Components and functions make the steps of a message, `server.function`
// separated by single spaces, so their names hold no dot and no white
// space. Workers and topics are only ever compared, so they may hold
// anything but are bounded in length.
package names

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gopalm/palm/internal/route"
)

// MaxLen is the longest component or function name, in bytes.
const MaxLen = 128

// MaxID is the longest worker name or topic, in bytes.
const MaxID = route.MaxIDLen

// Component checks the name of a component, or of a client's session;
// kind says which ("master", "server", "session", ...) in the error.
func Component(kind, name string) error {
	return stepPart(kind+" name", name, `use "-" or "_" instead`)
}

// Function checks the name a function is registered or asked for under:
// the function alone, without its server.
func Function(name string) error {
	return stepPart("function name", name, `give the function alone, such as "resize" for the step "server.resize"`)
}

// stepPart checks a name that stands in a step; fix says what to do about
// a dot.
func stepPart(what, name, dotFix string) error {
	switch {
	case name == "":
		return fmt.Errorf("the %s is empty; give it a name, such as %q", what, "resize")
	case !utf8.ValidString(name):
		return fmt.Errorf("the %s is not valid UTF-8; names travel as protobuf strings, which must be UTF-8", what)
	case len(name) > MaxLen:
		return fmt.Errorf("the %s is %d bytes; it may be at most %d bytes", what, len(name), MaxLen)
	case strings.Contains(name, "."):
		return fmt.Errorf("the %s contains a dot, which separates a server from its function in a step; %s", what, dotFix)
	case strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return fmt.Errorf(`the %s contains white space, which separates the steps of a function field; use "-" or "_" instead`, what)
	}
	return nil
}

// Worker checks a worker's name: the master logs it and need not find it
// unique, so it may hold dots and spaces.
func Worker(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the worker name is empty; give the worker a name, which the master's logs show")
	case !utf8.ValidString(name):
		return fmt.Errorf("the worker name is not valid UTF-8; names travel as protobuf strings, which must be UTF-8")
	case len(name) > MaxID:
		return fmt.Errorf("the worker name is %d bytes; it may be at most %d bytes", len(name), MaxID)
	}
	return nil
}

// Topic checks a topic a component publishes under or subscribes to.
func Topic(topic string) error {
	rule := fmt.Sprintf("a topic is non-empty UTF-8 of at most %d bytes", MaxID)
	switch {
	case topic == "":
		return fmt.Errorf("the topic is empty; %s", rule)
	case !utf8.ValidString(topic):
		return fmt.Errorf("the topic is not valid UTF-8; %s", rule)
	case len(topic) > MaxID:
		return fmt.Errorf("the topic is %d bytes; %s", len(topic), rule)
	}
	return nil
}
