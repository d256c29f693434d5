package reeve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LocalSecrets is the secret source of local runs: a secret NAME comes from
// the environment variable REEVE_SECRET_NAME, else from the secrets file
// (when file is not ""). The file is either a JSON object of strings (a
// .json file) or lines of NAME=value, with # comments; it is read on each
// lookup, so edits apply to the next run.
func LocalSecrets(file string) SecretSource { return localSecrets{file: file} }

type localSecrets struct{ file string }

func (s localSecrets) Secret(_ context.Context, name string) (string, error) {
	if v, ok := os.LookupEnv("REEVE_SECRET_" + name); ok {
		return v, nil
	}
	if s.file != "" {
		m, err := readSecretsFile(s.file)
		if err != nil {
			return "", err
		}
		if v, ok := m[name]; ok {
			return v, nil
		}
		return "", fmt.Errorf("secret %q is not set: set REEVE_SECRET_%s or add %s to the secrets file %s", name, name, name, s.file)
	}
	return "", fmt.Errorf("secret %q is not set: set the environment variable REEVE_SECRET_%s, or put it in a secrets file and pass --secrets-file", name, name)
}

func readSecretsFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	m := map[string]string{}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("secrets file %s: want a JSON object of string values: %w", path, err)
		}
		return m, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("secrets file %s line %d: want NAME=value", path, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		m[strings.TrimSpace(k)] = v
	}
	return m, sc.Err()
}
