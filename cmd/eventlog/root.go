package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventlog/eventlog/client"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

// app holds what every command shares: the process's environment and
// streams, and the global flags.
type app struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	url        string
	token      string
	configPath string
	output     string
	timeout    time.Duration
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "eventlog",
		Short: "Drive an eventlog server from the command line",
		Long: `eventlog appends, reads and follows the streams and feeds of an eventlog
server, and shows aggregate state, snapshots and consumer groups.

The server is --url, else $EVENTLOG_URL, else "url" in the config file, else
` + client.DefaultBaseURL + `. The token (sent as Authorization: Bearer) is --token,
else $EVENTLOG_TOKEN, else "token" in the config file. The config file is
--config, else $EVENTLOG_CONFIG, else eventlog/config.json in the user's
config directory; it is JSON: {"url": "...", "token": "..."}.

Exit codes: 0 ok, 1 usage (or a server certificate that does not verify),
2 not found, 3 conflict, 4 server unavailable,
busy (429) or failing, 5 request refused as invalid, 6 write outcome unknown (retry
with the same event ids), 7 not authorized.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.url, "url", "", "server URL (env EVENTLOG_URL)")
	f.StringVar(&a.token, "token", "", "bearer token (env EVENTLOG_TOKEN)")
	f.StringVar(&a.configPath, "config", "", "config file (env EVENTLOG_CONFIG)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table, json or ndjson")
	f.DurationVar(&a.timeout, "timeout", 30*time.Second, "bound of one command, retries included, a read's whole replay too (0: none); tail is not bounded: it runs until interrupted, --count or caught up (--exit)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "ndjson"}, cobra.ShellCompDirectiveNoFileComp))
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		switch a.output {
		case "table", "json", "ndjson":
			return nil
		}
		return fmt.Errorf("--output must be table, json or ndjson, not %q", a.output)
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddCommand(
		a.appendCommand(),
		a.readCommand(),
		a.tailCommand(),
		a.stateCommand(),
		a.snapshotCommand(),
		a.streamsCommand(),
		a.categoriesCommand(),
		a.eventCommand(),
		a.groupsCommand(),
		a.clusterCommand(),
		a.keysCommand(),
		a.healthCommand(),
	)
	return root
}

// settings are the resolved connection settings.
type settings struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// settings resolves --url and --token: flag, then environment, then config
// file, then the default URL.
func (a *app) settings() (settings, error) {
	var file settings
	path := a.configPath
	if path == "" {
		path = a.getenv("EVENTLOG_CONFIG")
	}
	explicit := path != ""
	if path == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			path = filepath.Join(dir, "eventlog", "config.json")
		}
	}
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil && strings.TrimSpace(string(b)) == "":
			// An empty file (made with touch) holds no settings.
		case err == nil:
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&file); err != nil {
				return settings{}, fmt.Errorf("config file %s: %w", path, err)
			}
		case !errors.Is(err, os.ErrNotExist) || explicit:
			return settings{}, fmt.Errorf("config file: %w", err)
		}
	}
	s := settings{
		URL:   first(a.url, a.getenv("EVENTLOG_URL"), file.URL, client.DefaultBaseURL),
		Token: first(a.token, a.getenv("EVENTLOG_TOKEN"), file.Token),
	}
	return s, nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// client returns a client for the resolved settings.
func (a *app) client() (*client.Client, error) {
	s, err := a.settings()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &bearer{token: s.Token, next: http.DefaultTransport}}
	return client.New(client.Options{BaseURL: s.URL, HTTPClient: hc, UserAgent: "eventlog-cli/" + version})
}

// bearer adds Authorization: Bearer to every request when a token is set.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token == "" {
		return b.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// ctx bounds a command by --timeout.
func (a *app) ctx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	if a.timeout <= 0 {
		return context.WithCancel(cmd.Context())
	}
	return context.WithTimeout(cmd.Context(), a.timeout)
}

// printError writes err to stderr, with the status when the server sent a
// problem.
func (a *app) printError(err error) {
	msg := strings.TrimPrefix(err.Error(), "eventlog: ")
	var p *client.Problem
	if errors.As(err, &p) && p.Code != "" {
		msg += fmt.Sprintf(" (status %d)", p.Status)
		if p.Code == client.CodeWrongExpectedVersion {
			msg += fmt.Sprintf("; the stream is at version %d", p.CurrentVersion)
		}
		if p.RequestID != "" {
			msg += "; request id " + p.RequestID
		}
	}
	if a.timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
		// The command's own bound, not the server's: say which, and how
		// to lift it (a long replay may need it).
		msg += fmt.Sprintf(" (the command's --timeout %s ran out; --timeout 0 waits without bound)", a.timeout)
	}
	fmt.Fprintf(a.stderr, "eventlog: %s\n", msg)
	if exitCode(err) == exitUsage {
		fmt.Fprintln(a.stderr, "Run 'eventlog --help' for usage.")
	}
}
