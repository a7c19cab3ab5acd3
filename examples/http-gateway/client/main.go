// Command client calls the master's function over plain HTTP.
package main

import (
	"cmp"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	resp, err := http.Get("http://" + cmp.Or(os.Getenv("PALM_HTTP"), "localhost:8888") + "/function")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(body))
}
