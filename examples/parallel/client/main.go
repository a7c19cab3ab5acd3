// Command client sends ten messages to server.foo and prints the replies.
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

	for response, err := range c.Job(context.Background(), "server.foo", client.Repeat([]byte("a message"), 10), client.Messages(10)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", response)
	}
}
