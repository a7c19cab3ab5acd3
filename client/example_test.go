package client_test

import (
	"fmt"

	"github.com/gopalm/palm/client"
)

func ExampleRepeat() {
	for p := range client.Repeat([]byte("a message"), 3) {
		fmt.Printf("%s\n", p)
	}
	// Output:
	// a message
	// a message
	// a message
}
