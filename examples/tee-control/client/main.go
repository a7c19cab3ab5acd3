// Command client sends ten messages through my_server.foo and then
// my_pipeline.foo and prints the five replies, those of the even messages.
// Run it once examples/tee-control/server, examples/tee-control/pipeline
// and examples/tee-control/echo are up.
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
		client.SubAddress(cmp.Or(os.Getenv("PALM_PIPELINE"), "127.0.0.1:5560")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for response, err := range c.Job(context.Background(), client.Steps("my_server.foo", "my_pipeline.foo"),
		client.Repeat([]byte("a message"), 10), client.Messages(5)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("Client got: %s\n", response)
	}
}
