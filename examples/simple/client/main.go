// Command client calls my_server.foo once and prints the reply.
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
	c, err := client.New("my_server", cmp.Or(os.Getenv("PALM_SERVER"), "127.0.0.1:5555"))
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
