// Command client sends ten messages through my_server.foo, my_pipeline.foo
// and my_sink.foo, and prints the ten replies, which come from the sink.
// Run it once examples/sink/server, examples/sink/even, examples/sink/odd
// and examples/sink/sink are up.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/gopalm/palm/client"
)

func main() {
	c, err := client.New("my_server", cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555"),
		client.SubAddress(cmp.Or(os.Getenv("PALM_SINK"), "127.0.0.1:5580")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for response, err := range c.Job(context.Background(), client.Steps("my_server.foo", "my_pipeline.foo", "my_sink.foo"),
		client.Repeat([]byte("a message"), 10), client.Messages(10)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("Client got: %s\n", response)
	}
}
