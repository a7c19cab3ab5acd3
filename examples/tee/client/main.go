// Command client sends a message through my_server.foo and then
// my_pipeline.foo, and prints the reply of the branch at 127.0.0.1:5560. Run
// it once examples/tee/server, examples/tee/pipeline and examples/tee/echo
// are up.
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

	result, err := c.Eval(context.Background(), client.Steps("my_server.foo", "my_pipeline.foo"), []byte("a message"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Client got: %s\n", result)
}
