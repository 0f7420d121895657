// Command eventlog is the command-line client of an eventlog server, built
// on the Go client (package client): append, read, tail streams and feeds,
// aggregate state, snapshots, stream info and consumer groups.
//
//	eventlog append user-42 --type UserCreated --data '{"name":"Ada"}'
//	eventlog read user-42 -o ndjson
//	eventlog tail --feed category/user --from now
//
// The server is --url, else $EVENTLOG_URL, else "url" in the config file
// (--config, else $EVENTLOG_CONFIG, else eventlog/config.json in the user's
// config directory), else http://127.0.0.1:8080; --token, $EVENTLOG_TOKEN
// and "token" likewise (sent as Authorization: Bearer). Output is a table
// for a person, or -o json / -o ndjson for scripts. Exit codes (exitcode.go):
// 0 ok, 1 usage (or a server certificate that does not verify), 2 not found,
// 3 conflict, 4 server unavailable, busy (429)
// or failing, 5 request refused as invalid, 6 write outcome unknown, 7 not authorized.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &app{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		app.printError(err)
	}
	return exitCode(err)
}
