package palmtest

import "strings"

// GoBuild returns the arguments of `go build -o out pkg`, with -race when
// the tests run with the race detector (Race), so that a program a test
// starts is built as the test is.
func GoBuild(out, pkg string, flags ...string) []string {
	args := []string{"build"}
	if Race {
		args = append(args, "-race")
	}
	args = append(args, flags...)
	return append(args, "-o", out, pkg)
}

// RaceReport is what a program built with -race prints on standard error
// when it finds a data race.
const RaceReport = "WARNING: DATA RACE"

// HasRace reports whether a program's output holds a race detector report.
func HasRace(output string) bool { return strings.Contains(output, RaceReport) }
