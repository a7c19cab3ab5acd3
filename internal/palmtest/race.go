//go:build race

package palmtest

// Race reports whether the tests run with the race detector (go test -race).
// GoBuild passes -race on when it is set, so the programs a test starts are
// checked as the test itself is.
const Race = true
