// Command server runs eventlog: the HTTP API over a Cassandra event store.
//
//	server [serve] [flags]   run the API (the default)
//	server migrate [flags]   create the keyspace and apply schema migrations
//	server keys create --name NAME --scope SCOPE [--scope ...] [--expires DURATION] [flags]
//	server keys list [flags]
//	server keys revoke NAME [flags]
//	server verify [--streams [--repair]] [--snapshots] [--concurrency N] [--rate N] [--format text|json] [flags]
//	server version           print the version
//
// `server --help` lists every flag with its environment variable.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, stop, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run executes one command and returns the exit code. stop releases the
// signal handler, so a second signal during shutdown kills the process.
func run(ctx context.Context, stop func(), args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "serve", "migrate":
	case "keys":
		return runKeys(ctx, args, getenv, stdout, stderr)
	case "verify":
		return runVerify(ctx, args, getenv, stdout, stderr)
	case "help":
		args = []string{"-help"}
	default:
		fmt.Fprintf(stderr, "server: unknown command %q (want serve, migrate, keys, verify or version; see server --help)\n", cmd)
		return 2
	}

	m := NewMain()
	m.Stderr = stderr
	if err := m.Config.ParseFlags("server "+cmd, args, getenv, stderr); err != nil {
		if err == errHelp {
			return 0
		}
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 2
	}

	if cmd == "migrate" {
		if err := m.Migrate(ctx); err != nil {
			m.logger().Error("migrate failed", "error", err)
			return 1
		}
		return 0
	}

	tuneGC(getenv, m.Config.MemoryLimit)
	if err := m.Run(ctx); err != nil {
		m.logger().Error("server failed to start", "error", err)
		m.Close()
		return 1
	}
	var code int
	select {
	case <-ctx.Done():
		m.logger().Info("shutting down", "timeout", m.Config.ShutdownTimeout.String())
	case err := <-m.ServeErr():
		m.logger().Error("server stopped", "error", err)
		code = 1
	}
	stop()
	if err := m.Close(); err != nil {
		m.logger().Error("shutdown", "error", err)
		code = 1
	}
	return code
}
