// Command client sends ten messages through server.foo, on the master's
// workers, and then my_pipeline.foo, and prints the ten replies, which come
// from the pipeline. Run it once examples/master-pipeline/master, its
// workers and examples/master-pipeline/pipeline are up.
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
	c, err := client.New("server", cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559"),
		client.SubAddress(cmp.Or(os.Getenv("PALM_PIPELINE"), "127.0.0.1:5560")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for response, err := range c.Job(context.Background(), client.Steps("server.foo", "my_pipeline.foo"),
		client.Repeat([]byte("a message"), 10), client.Messages(10)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", response)
	}
}
