package docker

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// parseCPU parses a CPU limit as a run configuration writes it, in cores
// ("2", "0.5") or millicores ("500m"), into Docker's NanoCPUs. "" is 0
// (no limit).
func parseCPU(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	bad := func() (int64, error) {
		return 0, fmt.Errorf("the CPU limit %q is not a number of cores like 2, 0.5 or 500m (millicores): correct the flow's --cpu", s)
	}
	num, scale := s, 1e9
	if n, ok := strings.CutSuffix(s, "m"); ok {
		num, scale = n, 1e6
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return bad()
	}
	nano := math.Round(f * scale)
	if nano < 1e6 { // under a millicore
		return 0, fmt.Errorf("the CPU limit %q is below the least Docker enforces (1m, a thousandth of a core): correct the flow's --cpu", s)
	}
	if nano > math.MaxInt64/2 {
		return bad()
	}
	return int64(nano), nil
}

// memoryUnits are the suffixes of a Kubernetes-style quantity of bytes.
var memoryUnits = map[string]float64{
	"":  1,
	"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60,
}

// parseMemory parses a memory limit as a run configuration writes it,
// Kubernetes-style ("512Mi", "1Gi", "64M", "1048576" bytes), into bytes.
// "" is 0 (no limit).
func parseMemory(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], s[i:]
	}
	mult, ok := memoryUnits[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f*mult > math.MaxInt64/2 {
		hint := ""
		switch strings.ToLower(unit) {
		case "m", "mb", "g", "gb", "kb":
			hint = fmt.Sprintf(" (did you mean %s%si?)", num, strings.ToUpper(unit[:1]))
		}
		return 0, fmt.Errorf("the memory limit %q is not a size like 512Mi, 1Gi, 64M or 1048576 (bytes)%s: correct the flow's --memory", s, hint)
	}
	return int64(math.Round(f * mult)), nil
}

// formatBytes writes a memory limit for people: "64 MiB".
func formatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f, u := float64(n), 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if f == math.Trunc(f) {
		return fmt.Sprintf("%d %s", int64(f), units[u])
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}

// parsePlatform parses "os/arch[/variant]"; "" is nil (the engine's own).
func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] == "") {
		return nil, fmt.Errorf("the platform %q is not OS/ARCH or OS/ARCH/VARIANT, like linux/amd64 or linux/arm/v7", s)
	}
	p := &ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func formatPlatform(p *ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
