// Command client calls my_server.foo once and prints the reply.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/gopalm/palm/client"
)

func main() {
	// As in the original, the client may start before the server: it
	// waits for it, up to a minute.
	c, err := client.New("my_server", cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555"), client.WaitForServer(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	result, err := c.Eval(context.Background(), "my_server.foo", []byte("a message"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Client got: %s\n", result)
}
