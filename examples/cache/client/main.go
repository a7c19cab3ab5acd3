// Command client leaves data in the master's cache, reads it back, then
// sends ten messages to server.foo and prints every reply until the job is
// done. The scatter, gather and logging examples use it too.
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
	c, err := client.New("server", cmp.Or(os.Getenv("PALM_MASTER"), "127.0.0.1:5559"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if _, err := c.Set(ctx, "cached", []byte(" cached data ")); err != nil {
		log.Fatal(err)
	}
	data, err := c.Get(ctx, "cached")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", data)

	for response, err := range c.Job(ctx, "server.foo", client.Repeat([]byte("a message"), 10)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", response)
	}
}
