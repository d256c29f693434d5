package testenv_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/reevehq/reeve/internal/testenv"
)

// TestBusyboxBaseRunsInDocker loads the busybox base into the real engine
// and runs its shell: a base image with a non-Go tool, made without any
// registry.
func TestBusyboxBaseRunsInDocker(t *testing.T) {
	cl := testenv.Docker(t)
	img := testenv.BusyboxBase(t)
	ref := "reeve-testenv/busybox:test"
	testenv.LoadImage(t, cl, ref, img)
	ctx := t.Context()
	c, err := cl.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image:  ref,
		Config: &container.Config{Cmd: []string{"sh", "-c", "echo hello from $(uname -s)"}},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cl.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := cl.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	w := cl.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-w.Result:
		if r.StatusCode != 0 {
			t.Fatalf("exit status %d", r.StatusCode)
		}
	case err := <-w.Error:
		t.Fatalf("wait: %v", err)
	}
	logs, err := cl.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(stdout.String()); got != "hello from Linux" {
		t.Errorf("stdout %q (stderr %q), want %q", got, stderr.String(), "hello from Linux")
	}
}

// TestRegistryServes pushes nothing but proves the registry answers the
// OCI distribution API's base route.
func TestRegistryServes(t *testing.T) {
	host := testenv.Registry(t)
	resp, err := httpGet("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	if resp != 200 {
		t.Fatalf("GET /v2/ = %d, want 200", resp)
	}
}

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
