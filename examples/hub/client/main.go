// Command client sends a message through server.foo and then hub.foo, on
// the hub's workers, and prints the reply, which comes from the hub. Run it
// once examples/hub/server, examples/hub/hub and its workers are up.
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
	c, err := client.New("server", cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555"),
		client.SubAddress(cmp.Or(os.Getenv("PALM_HUB"), "127.0.0.1:5561")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	result, err := c.Eval(context.Background(), client.Steps("server.foo", "hub.foo"), []byte("a message"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Client got: %s\n", result)
}
