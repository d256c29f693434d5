// Command dockerflows is the flow program of Reeve's Docker end-to-end
// tests: it is built into an image by reeve deploy and run in containers
// by the Docker agent.
//
// Its directory is $E2E_DIR (default /data, a volume the agent mounts).
// Tasks that the tests count append a line to calls there; the gate task
// writes its container's host name to started and waits for release there.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve"
)

func dir() string {
	if d := os.Getenv("E2E_DIR"); d != "" {
		return d
	}
	return "/data"
}

// record appends line to calls in the directory.
func record(line string) error {
	f, err := os.OpenFile(filepath.Join(dir(), "calls"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

var (
	// Tool calls a program the base image carries (busybox's sha256sum):
	// a flow's non-Go dependency comes with its base image.
	Tool = reeve.NewTask1("docker.tool", func(ctx context.Context, s string) (string, error) {
		cmd := exec.CommandContext(ctx, "sha256sum")
		cmd.Stdin = strings.NewReader(s)
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("sha256sum: %w", err)
		}
		sum, _, _ := strings.Cut(string(out), " ")
		fmt.Println("sha256sum of", strconv.Quote(s), "is", sum)
		return sum, nil
	})
	// Upper upper-cases its input.
	Upper = reeve.NewTask1("docker.upper", func(ctx context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	})
	// Where says where the task runs, as whom, and what of a system the
	// image has: the static base has users and CA certificates, scratch
	// has neither. (Time zones work on both: the SDK embeds them.)
	Where = reeve.NewTask0("docker.where", func(ctx context.Context) (string, error) {
		host, _ := os.Hostname()
		who := "unknown (no /etc/passwd)"
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
		certs := "no CA certificates"
		if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
			certs = "CA certificates"
		}
		paris := "unknown"
		if loc, err := time.LoadLocation("Europe/Paris"); err == nil {
			paris = "UTC" + time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Format("-07:00")
		}
		fmt.Printf("running in %s as uid %d, user %s, with %s; Paris is %s\n", host, os.Getuid(), who, certs, paris)
		return host, nil
	})
	// Mark records its call and adds one.
	Mark = reeve.NewTask1("docker.mark", func(ctx context.Context, n int) (int, error) {
		info, _ := reeve.Info(ctx)
		return n + 1, record(info.Task + " " + info.FlowRunID)
	})
	// Gate writes its container's host name to started, then waits for
	// release.
	Gate = reeve.NewTask1("docker.gate", func(ctx context.Context, n int) (int, error) {
		info, _ := reeve.Info(ctx)
		host, _ := os.Hostname()
		if err := os.WriteFile(filepath.Join(dir(), "started"), []byte(host), 0o666); err != nil {
			return 0, err
		}
		for {
			if _, err := os.Stat(filepath.Join(dir(), "release")); err == nil {
				return n * 10, record(info.Task + " " + info.FlowRunID)
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
)

func flows() []*reeve.Flow {
	// tools: a non-Go tool from the base image; one result in the
	// server's store (the default), one in a file:// store on the volume.
	tools := reeve.NewFlow("tools")
	text := reeve.Param(tools, "text", reeve.Default("reeve"))
	sum := Tool.Bind(tools, text)
	Upper.Bind(tools, sum, reeve.Name("upper"), reeve.Checkpoint(), reeve.ResultStore("file:///data/results"))

	// hello: pure Go, for any base (scratch included).
	hello := reeve.NewFlow("hello")
	Where.Bind(hello)

	// resume: mark → gate → mark; a test kills the container while the
	// gate waits.
	resume := reeve.NewFlow("resume")
	a := Mark.Bind(resume, reeve.Const(resume, 1), reeve.Name("before"))
	Mark.Bind(resume, Gate.Bind(resume, a), reeve.Name("after"))
	return []*reeve.Flow{tools, hello, resume}
}

func main() { reeve.Main(flows()...) }
