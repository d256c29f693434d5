package cli

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseAgentEnv(t *testing.T) {
	t.Parallel()
	lookup := func(name string) (string, bool) {
		v, ok := map[string]string{"AWS_PROFILE": "prod", "EMPTY": ""}[name]
		return v, ok
	}
	got, err := parseAgentEnv([]string{"REGION=eu-west-1", "AWS_PROFILE", "EMPTY", "EQ=a=b", "BLANK="}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"REGION": "eu-west-1", "AWS_PROFILE": "prod", "EMPTY": "", "EQ": "a=b", "BLANK": ""}
	if !maps.Equal(got, want) {
		t.Errorf("parseAgentEnv = %v, want %v", got, want)
	}
	if got, err := parseAgentEnv(nil, lookup); err != nil || got != nil {
		t.Errorf("parseAgentEnv(nil) = %v, %v, want nothing", got, err)
	}
	for flag, wants := range map[string][]string{
		"MISSING": {"--env MISSING", "the agent's environment has no MISSING", "--env MISSING=VALUE"},
		"=value":  {`--env "=value"`, "NAME=VALUE"},
	} {
		_, err := parseAgentEnv([]string{"REGION=eu", flag}, lookup)
		if err == nil {
			t.Errorf("parseAgentEnv(%q) succeeded, want an error", flag)
			continue
		}
		if !errors.As(err, new(usageError)) {
			t.Errorf("parseAgentEnv(%q): %v is not a usage error", flag, err)
		}
		for _, want := range wants {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("parseAgentEnv(%q): the error %q does not say %q", flag, err, want)
			}
		}
	}
}
