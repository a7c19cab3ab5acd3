// Command client calls the buggy my_server.foo, which fails for that
// message alone, then my_server.bar, which works.
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
	ctx := context.Background()

	if _, err := c.Eval(ctx, "my_server.foo", []byte("a message")); err != nil {
		fmt.Println("Client got an error:", err)
	}
	result, err := c.Eval(ctx, "my_server.bar", []byte("a message"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Client got: %s\n", result)
}
