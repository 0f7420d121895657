// Command importer is a program of another module that imports the
// eventlog client, as a user's would (through a replace of the module to
// this repository's client/): TestClientDependencies builds it and lists
// what it depends on.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/eventlog/eventlog/client"
)

func main() {
	c, err := client.New(client.Options{BaseURL: "http://127.0.0.1:8080"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := c.Health(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
