package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDeployFilesUseServerFlags keeps docker-compose.yml and the
// Dockerfile in step with the server's flags, since neither runs in CI
// (no Docker engine): every EVENTLOG_* variable of the compose file's
// server service names a flag (ParseFlags ignores a variable it does not
// know, so a renamed flag would be dropped silently), its command and
// environment parse and validate as the container would start them, the
// keys command its header shows parses too, and the Dockerfile's
// entrypoint and -X version variable are the ones compose and the binary
// use.
func TestDeployFilesUseServerFlags(t *testing.T) {
	compose, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	_, server, ok := strings.Cut(string(compose), "\n  server:\n")
	if !ok {
		t.Fatal("docker-compose.yml has no server service")
	}
	if end := regexp.MustCompile(`\n  [a-z]|\n[a-z]`).FindStringIndex(server); end != nil {
		server = server[:end[0]]
	}

	known := map[string]bool{}
	c := DefaultConfig()
	c.flagSet("server", io.Discard).VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(EVENTLOG_[A-Z0-9_]+):\s*(.+)$`).FindAllStringSubmatch(server, -1) {
		if !known[m[1]] {
			t.Errorf("docker-compose.yml sets %s, which is no flag's variable", m[1])
		}
		env[m[1]] = strings.Trim(strings.TrimSpace(m[2]), `"'`)
	}
	if env["EVENTLOG_CASSANDRA_HOSTS"] == "" || env["EVENTLOG_LISTEN"] == "" {
		t.Fatalf("the server service sets no EVENTLOG_CASSANDRA_HOSTS or EVENTLOG_LISTEN: the parse is broken\n%s", server)
	}

	m := regexp.MustCompile(`(?m)^\s+command:\s*(\[.*\])\s*$`).FindStringSubmatch(server)
	if m == nil {
		t.Fatal("the server service has no command: [...]")
	}
	var command []string
	if err := json.Unmarshal([]byte(m[1]), &command); err != nil {
		t.Fatalf("command %s: %v", m[1], err)
	}
	if len(command) == 0 || command[0] != "serve" {
		t.Fatalf("command %v: want serve first", command)
	}
	cfg := DefaultConfig()
	if err := cfg.ParseFlags("server serve", command[1:], env2(env), io.Discard); err != nil {
		t.Errorf("the compose server would not start: %v", err)
	}

	// The header's `docker compose exec -T server /usr/local/bin/server keys create ...`.
	exec := regexp.MustCompile(`exec -T server (\S+) keys create (.*?) \|`).FindStringSubmatch(string(compose))
	if exec == nil {
		t.Fatal("docker-compose.yml's header shows no keys create")
	}
	// --help after them: the flags are parsed, and nothing is sent.
	var stderr strings.Builder
	args := append(append([]string{"keys", "create"}, strings.Fields(exec[2])...), "--help")
	if code := run(context.Background(), func() {}, args, env2(env), io.Discard, &stderr); code != 0 || strings.Contains(stderr.String(), "not defined") {
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		t.Errorf("keys create %s: exit %d: %s", exec[2], code, lines[len(lines)-1])
	}

	docker, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if entry := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"\]`).FindSubmatch(docker); entry == nil || string(entry[1]) != exec[1] {
		t.Errorf("the Dockerfile's ENTRYPOINT %q is not the binary compose runs (%s)", entry, exec[1])
	}
	if x := regexp.MustCompile(`-X main\.(\w+)=`).FindSubmatch(docker); x == nil || string(x[1]) != "version" {
		t.Errorf("the Dockerfile sets -X main.%s, want main.version (go build ignores an unknown one)", x)
	}
	_ = version // the variable -X main.version sets
}

func env2(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
