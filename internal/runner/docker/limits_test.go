package docker

import (
	"strings"
	"testing"
)

func TestParseCPU(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want int64
		err  string
	}{
		{"", 0, ""},
		{"500m", 500_000_000, ""},
		{"2", 2_000_000_000, ""},
		{"0.5", 500_000_000, ""},
		{"1.25", 1_250_000_000, ""},
		{"1m", 1_000_000, ""},
		{"0.0001", 0, "below the least Docker enforces"},
		{"0", 0, "not a number of cores"},
		{"-1", 0, "not a number of cores"},
		{"two", 0, "not a number of cores like 2, 0.5 or 500m"},
		{"500M", 0, "not a number of cores"},
		{"NaN", 0, "not a number of cores"},
	} {
		got, err := parseCPU(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseCPU(%q) = %d, %v, want an error saying %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("parseCPU(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want int64
		err  string
	}{
		{"", 0, ""},
		{"512Mi", 512 << 20, ""},
		{"1Gi", 1 << 30, ""},
		{"1.5Gi", 3 << 29, ""},
		{"64M", 64_000_000, ""},
		{"1048576", 1 << 20, ""},
		{"100k", 100_000, ""},
		{"512m", 0, "did you mean 512Mi?"},
		{"1GB", 0, "did you mean 1Gi?"},
		{"lots", 0, "not a size like 512Mi, 1Gi, 64M or 1048576"},
		{"0", 0, "not a size"},
		{"-5Mi", 0, "not a size"},
		{"1Qi", 0, "not a size"},
		{"99999999Ei", 0, "not a size"},
	} {
		got, err := parseMemory(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseMemory(%q) = %d, %v, want an error saying %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("parseMemory(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestExitOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code   int
		oom    bool
		memory int64
		want   string
	}{
		{0, false, 0, "exited with status 0"},
		{3, false, 0, "exited with status 3"},
		{137, false, 0, "was killed by signal SIGKILL (killed)"},
		{143, false, 0, "was killed by signal SIGTERM (terminated)"},
		{255, false, 0, "exited with status 255"},
		{137, true, 64 << 20, "was killed for running out of memory: its memory limit is 64 MiB (raise it with the flow's --memory)"},
		{137, true, 0, "was killed for running out of memory: it had no memory limit: the machine ran out of memory"},
		{1, true, 1536 << 20, "exited with status 1 after running out of memory (the kernel killed a process of it): its memory limit is 1.5 GiB (raise it with the flow's --memory)"},
		{0, true, 64 << 20, "exited with status 0"},
	} {
		if got := exitOf(tt.code, tt.oom, tt.memory).String(); got != tt.want {
			t.Errorf("exitOf(%d, %v, %d) = %q, want %q", tt.code, tt.oom, tt.memory, got, tt.want)
		}
	}
}

func TestContainerName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id      string
		attempt int
		want    string
	}{
		{"0192f3a0-7b1c-7d2e-9f00-112233445566", 1, "reeve-0192f3a0-7b1c-7d2e-9f00-112233445566-1"},
		{"run/with spaces:and+more", 2, "reeve-run-with-spaces-and-more-2"},
	} {
		if got := containerName(tt.id, tt.attempt); got != tt.want {
			t.Errorf("containerName(%q, %d) = %q, want %q", tt.id, tt.attempt, got, tt.want)
		}
	}
}
