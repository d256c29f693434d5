package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the time of every file in the layers and of the image itself:
// fixed, so the same inputs give the same digest.
var epoch = time.Unix(0, 0).UTC()

// baseImage returns the base image for plat: Reeve's static base for ""
// and "static", the empty image for "scratch", else the one pulled from
// its registry.
func baseImage(ctx context.Context, ref string, plat *v1.Platform) (v1.Image, error) {
	if ref == "" || ref == StaticBase {
		return staticBase(ctx)
	}
	if ref == ScratchBase {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		return mutate.ConfigMediaType(img, types.OCIConfigJSON), nil
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(*plat),
		remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return nil, fmt.Errorf("base image %s for %s: %w (check the name, that the registry is reachable, and that you are logged in to it, e.g. with docker login; --base-image scratch needs no registry)", ref, plat, err)
	}
	return img, nil
}

// assemble makes the image: the base, the program layer, the specs layer,
// and the config.
func assemble(ctx context.Context, o Options, plat *v1.Platform, p *program, flows []Flow, specDir string) (v1.Image, error) {
	base, err := baseImage(ctx, o.BaseImage, plat)
	if err != nil {
		return nil, err
	}
	mt, err := base.MediaType()
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", o.BaseImage, err)
	}
	layerType := types.DockerLayer
	if mt == types.OCIManifestSchema1 {
		layerType = types.OCILayer
	}

	var bin, specs tarLayer
	if err := bin.addFile(path.Join(BinDir, p.name), p.path, 0o755); err != nil {
		return nil, err
	}
	for _, f := range flows {
		if err := specs.addFile(path.Join(FlowsDir, f.Name+".json"), filepath.Join(specDir, f.Name+".json"), 0o644); err != nil {
			return nil, err
		}
	}
	for _, f := range o.Files {
		fi, err := os.Stat(f.Src)
		if err != nil {
			return nil, fmt.Errorf("--file %s:%s: %w", f.Src, f.Dst, err)
		}
		switch {
		case fi.IsDir():
			if err := specs.addTree(path.Clean(f.Dst), f.Src); err != nil {
				return nil, fmt.Errorf("--file %s:%s: %w", f.Src, f.Dst, err)
			}
		case fi.Mode().IsRegular():
			if err := specs.addFile(path.Clean(f.Dst), f.Src, int64(fi.Mode().Perm()|0o444)); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("--file %s:%s: %s is neither a regular file nor a directory", f.Src, f.Dst, f.Src)
		}
	}
	var adds []mutate.Addendum
	for _, l := range []struct {
		t   *tarLayer
		why string
	}{{&bin, "reeve build: the flow program"}, {&specs, "reeve build: the flow specs and extra files"}} {
		layer, err := l.t.layer(layerType)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{
			Layer:     layer,
			History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: l.why},
			MediaType: layerType,
		})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Author = ""
	cfg := &cf.Config
	cfg.Entrypoint = []string{path.Join(BinDir, p.name)}
	cfg.Cmd = nil
	cfg.WorkingDir = WorkDir
	cfg.User = fmt.Sprintf("%d:%d", UID, UID)
	cfg.Env = mergeEnv(cfg.Env, o.Env)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range o.Labels {
		cfg.Labels[k] = v
	}
	if o.Source != "" {
		cfg.Labels[LabelSource] = o.Source
	}
	if rev := o.Revision; rev != "" || p.revision != "" {
		if rev == "" {
			rev = p.revision
		}
		cfg.Labels[LabelRevision] = rev
	}
	cfg.Labels[LabelFlows] = flowsLabel(flows)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	return mutate.CreatedAt(img, v1.Time{Time: epoch})
}

// mergeEnv returns base with each of add set, replacing a variable of the
// same name.
func mergeEnv(base, add []string) []string {
	out := slices.Clone(base)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// push writes the image, or for several platforms an OCI image index of
// the images, to the registry under its tag and returns the result.
func push(ctx context.Context, o Options, plats []*v1.Platform, imgs []v1.Image, p *program, flows []Flow) (Result, error) {
	res := Result{Flows: flows, Binary: path.Join(BinDir, p.name), Index: len(imgs) > 1}
	for i, img := range imgs {
		d, err := img.Digest()
		if err != nil {
			return Result{}, fmt.Errorf("build image: %w", err)
		}
		size, err := imageSize(img)
		if err != nil {
			return Result{}, err
		}
		res.Images = append(res.Images, Image{Platform: plats[i].String(), Digest: d.String(), Size: size})
		res.Platforms = append(res.Platforms, plats[i].String())
		res.Size += size
	}
	res.Platform = strings.Join(res.Platforms, ",")
	cf, err := imgs[0].ConfigFile()
	if err != nil {
		return Result{}, fmt.Errorf("build image: %w", err)
	}
	res.Labels = cf.Config.Labels

	var (
		digest v1.Hash
		write  func(name.Reference, ...remote.Option) error
	)
	if len(imgs) == 1 {
		if digest, err = imgs[0].Digest(); err != nil {
			return Result{}, fmt.Errorf("build image: %w", err)
		}
		write = func(r name.Reference, opts ...remote.Option) error { return remote.Write(r, imgs[0], opts...) }
	} else {
		idx, err := index(plats, imgs)
		if err != nil {
			return Result{}, err
		}
		if digest, err = idx.Digest(); err != nil {
			return Result{}, fmt.Errorf("build image index: %w", err)
		}
		write = func(r name.Reference, opts ...remote.Option) error { return remote.WriteIndex(r, idx, opts...) }
	}
	repo, err := name.NewRepository(o.Repo)
	if err != nil {
		return Result{}, fmt.Errorf("repository %s: %w", o.Repo, err)
	}
	tag := o.Tag
	if tag == "" {
		tag = digest.Hex[:12]
	}
	ref := repo.Tag(tag)
	if err := write(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return Result{}, fmt.Errorf("push %s: %w (check that the registry %s is reachable and that you may push to it: log in with docker login %s)",
			ref, err, repo.RegistryStr(), repo.RegistryStr())
	}
	res.Ref = repo.Digest(digest.String()).String()
	res.Tag = ref.String()
	res.Digest = digest.String()
	return res, nil
}

// index returns the OCI image index of imgs, each with its platform.
func index(plats []*v1.Platform, imgs []v1.Image) (v1.ImageIndex, error) {
	adds := make([]mutate.IndexAddendum, len(imgs))
	for i, img := range imgs {
		mt, err := img.MediaType()
		if err != nil {
			return nil, fmt.Errorf("build image index: %w", err)
		}
		adds[i] = mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: mt, Platform: plats[i]},
		}
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), nil
}

// imageSize is the sum of the compressed sizes of img's layers.
func imageSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, fmt.Errorf("build image: %w", err)
	}
	var size int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, fmt.Errorf("build image: %w", err)
		}
		size += n
	}
	return size, nil
}

// tarLayer is an uncompressed layer being written: files owned by root and
// read-only (the program cannot change itself, its specs or the extra
// files), with the epoch as their time, and their parent directories
// (root's, but the working directory, which is UID's).
type tarLayer struct {
	buf  bytes.Buffer
	tw   *tar.Writer
	dirs map[string]bool
}

func (t *tarLayer) header(h *tar.Header, uid int) error {
	if t.tw == nil {
		t.tw = tar.NewWriter(&t.buf)
		t.dirs = map[string]bool{}
	}
	h.Uid, h.Gid = uid, uid
	h.ModTime = epoch
	h.Format = tar.FormatPAX
	return t.tw.WriteHeader(h)
}

// mkdirAll adds dir and its parents, once each.
func (t *tarLayer) mkdirAll(dir string) error {
	if dir == "/" || dir == "." || (t.dirs != nil && t.dirs[dir]) {
		return nil
	}
	if err := t.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	// Only the working directory is the program's to write in: the
	// directories of the program and its specs, and those outside
	// (/etc, /usr, ...), stay root's.
	owner := 0
	if dir == WorkDir {
		owner = UID
	}
	if err := t.header(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(dir, "/") + "/", Mode: 0o755}, owner); err != nil {
		return err
	}
	t.dirs[dir] = true
	return nil
}

// addFile adds the file at dst with the contents of src.
func (t *tarLayer) addFile(dst, src string, mode int64) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("build image: %w", err)
	}
	if err := t.mkdirAll(path.Dir(dst)); err != nil {
		return err
	}
	if err := t.header(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: mode &^ 0o222, Size: int64(len(data))}, 0); err != nil {
		return err
	}
	_, err = t.tw.Write(data)
	return err
}

// addTree adds the directory src at dst: its subdirectories and regular
// files, in name order, readable by everyone (executables stay
// executable). Symbolic links are refused: what they point at on this
// machine would not be in the image.
func (t *tarLayer) addTree(dst, src string) error {
	if err := t.mkdirAll(dst); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			return t.mkdirAll(target)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return t.addFile(target, p, int64(fi.Mode().Perm()|0o444))
		default:
			return fmt.Errorf("%s is not a regular file or a directory (symbolic links and devices are not copied): replace it with the file itself", p)
		}
	})
}

// layer closes the tar stream and returns it as a gzip-compressed layer.
func (t *tarLayer) layer(mt types.MediaType) (v1.Layer, error) {
	if t.tw == nil {
		t.tw = tar.NewWriter(&t.buf)
	}
	if err := t.tw.Close(); err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	data := t.buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(mt), tarball.WithCompressedCaching)
}
