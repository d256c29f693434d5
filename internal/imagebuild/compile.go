package imagebuild

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reevehq/reeve/internal/spec"
)

// program is a compiled flow program.
type program struct {
	name     string // the binary's name: the last element of the import path
	path     string // where it was written
	revision string // the VCS revision go build stamped into it, if the tree was clean
}

// compile builds the main package in dir for plat into out: static,
// without paths of this machine, without a build ID, so the same sources
// give the same bytes.
func compile(ctx context.Context, dir string, plat *v1.Platform, out string) (*program, error) {
	list := exec.CommandContext(ctx, "go", "list", "-f", "{{.Name}}\t{{.ImportPath}}", ".")
	list.Dir = dir
	var stderr bytes.Buffer
	list.Stderr = &stderr
	b, err := list.Output()
	if err != nil {
		return nil, fmt.Errorf("build %s: no Go package there (go list: %s): give the directory of the flow program's main package", dir, firstLine(stderr.String(), err))
	}
	pkgName, importPath, _ := strings.Cut(strings.TrimSpace(string(b)), "\t")
	if pkgName != "main" {
		return nil, fmt.Errorf("build %s: package %s is not a main package: give the directory of the program that calls reeve.Main", dir, importPath)
	}
	p := &program{name: path.Base(importPath)}
	if p.name == "." || p.name == "/" || p.name == "command-line-arguments" {
		p.name = "flows"
	}
	binDir := filepath.Join(out, strings.Join([]string{plat.OS, plat.Architecture, plat.Variant}, "_"))
	p.path = filepath.Join(binDir, p.name)
	if err := goBuild(ctx, dir, plat, p.path); err != nil {
		return nil, err
	}
	if bi, err := buildinfo.ReadFile(p.path); err == nil {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if modified == "false" {
			p.revision = rev // a tree with changes is not that revision: no label
		}
	}
	return p, nil
}

func goBuild(ctx context.Context, dir string, plat *v1.Platform, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+plat.OS, "GOARCH="+plat.Architecture)
	if plat.Architecture == "arm" && strings.HasPrefix(plat.Variant, "v") {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(plat.Variant, "v"))
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: go build for %s failed: fix the errors below and build again:\n%s",
			dir, plat, strings.TrimSpace(string(b)))
	}
	return nil
}

// saveSpecs runs the program's save command and returns its flows and the
// directory it wrote their specs to. The program must run on this machine:
// when plat is not this machine's platform, a second binary is built for
// this machine only to save the specs (the specs come from the same
// sources, so they are the same).
func saveSpecs(ctx context.Context, dir string, p *program, plat *v1.Platform, tmp string) ([]Flow, string, error) {
	bin := p.path
	host := &v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if plat.OS != host.OS || plat.Architecture != host.Architecture {
		bin = filepath.Join(tmp, "host", p.name)
		if err := goBuild(ctx, dir, host, bin); err != nil {
			return nil, "", err
		}
	}
	specDir := filepath.Join(tmp, "flows")
	cmd := exec.CommandContext(ctx, bin, "save", "--out", specDir)
	cmd.Dir = tmp
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("build %s: the program's save command failed (does it call reeve.Main?): %w\n%s",
			dir, err, strings.TrimSpace(string(b)))
	}
	specs, err := spec.ReadDir(specDir)
	if err != nil {
		return nil, "", fmt.Errorf("build %s: the program saved no usable flow spec (does it register a flow with reeve.Main?): %w", dir, err)
	}
	flows := make([]Flow, 0, len(specs))
	for _, s := range specs {
		data, err := os.ReadFile(filepath.Join(specDir, s.Name+".json"))
		if err != nil {
			return nil, "", fmt.Errorf("build %s: read the spec of flow %s: %w", dir, s.Name, err)
		}
		f := Flow{Name: s.Name, Hash: s.Hash(), Spec: data}
		for _, sec := range s.Secrets {
			f.secrets = append(f.secrets, sec.Name)
		}
		flows = append(flows, f)
	}
	slices.SortFunc(flows, func(a, b Flow) int { return strings.Compare(a.Name, b.Name) })
	return flows, specDir, nil
}

func firstLine(s string, err error) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return err.Error()
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
