// Package apiblob is the gocloud.dev/blob driver of the Reeve server's own
// result store: results kept by the server, by key in the flow run's
// project, read and written over its API with the run's token.
//
// It is the result store of server runs whose flow names none, so that
// retries, restarts and resumed runs find their upstream results with no
// blob store to set up. It takes small results only (1 MB each unless the
// server is configured otherwise); a larger one fails with a message that
// says to give the flow a blob store (s3://, gs://, or a file:// directory
// every agent shares).
//
// The runner of a flow run calls [Register] with its API client and run,
// after which the URL [URL] ("reeve://server") opens the store through
// [gocloud.dev/blob.DefaultURLMux], as result.Open does:
//
//	apiblob.Register(c, flowRunID)
//	st, err := result.Open(ctx, apiblob.URL)
//
// The driver has no listing, deletion or signed URLs: result stores need
// none of them.
package apiblob

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
)

// Scheme is the URL scheme of the server's result store.
const Scheme = "reeve"

// URL is the URL of the server's result store.
const URL = Scheme + "://server"

// target is the server and run that a bucket's calls go to.
type target struct {
	c     *client.Client
	runID string
	sink  Deferrer // nil: every write is its own request
	limit atomic.Int64
	// pending holds the deferred results not yet delivered, by key, so
	// that this process reads back what it wrote; pendingBytes is their
	// size.
	pending      sync.Map // key → *pendingResult
	pendingBytes atomic.Int64
}

type pendingResult struct {
	value []byte
	at    time.Time
}

// Deferral bounds: a result larger than MaxDeferred, or one that would
// take the results waiting to be sent past MaxPendingBytes (the server is
// down, say), is written with a request of its own, which waits, instead.
// Small results, the common case, cost no request of their own.
const (
	MaxDeferred     = 64 << 10
	MaxPendingBytes = 64 << 20
)

// Deferrer takes results to send to the server later, ahead of the
// task-run states that name them (see api.WriteTaskRunStates.Results).
type Deferrer interface {
	DeferResult(key string, value []byte)
}

// RegisterDeferred is Register for a runner that sends results along with
// its task-run states: a write hands the result to d instead of sending it,
// after checking it against limit (the server's largest result, from its
// heartbeat answers; see SetLimit); reads see deferred results until
// Delivered drops them. It saves a request per task run.
func RegisterDeferred(c *client.Client, flowRunID string, d Deferrer, limit int) {
	t := &target{c: c, runID: flowRunID, sink: d}
	t.limit.Store(int64(limit))
	current.Store(t)
	registerOnce.Do(func() { blob.DefaultURLMux().RegisterBucket(Scheme, &URLOpener{}) })
}

// SetLimit changes the largest result a deferred write takes.
func SetLimit(limit int) {
	if t := current.Load(); t != nil && limit > 0 {
		t.limit.Store(int64(limit))
	}
}

// Delivered drops deferred results the server has stored: each key whose
// pending value is still the one delivered (a newer write of the key stays
// until it is delivered in turn).
func Delivered(results ...api.ResultPut) {
	t := current.Load()
	if t == nil {
		return
	}
	for _, r := range results {
		v, ok := t.pending.Load(r.Key)
		if !ok {
			continue
		}
		p := v.(*pendingResult)
		if len(p.value) == len(r.Value) && unsafe.SliceData(p.value) == unsafe.SliceData(r.Value) && t.pending.CompareAndDelete(r.Key, p) {
			t.pendingBytes.Add(-int64(len(p.value)))
		}
	}
}

var (
	current      atomic.Pointer[target]
	registerOnce sync.Once
)

// Register makes [URL] open the server's result store through c, for the
// flow run flowRunID, whose token c must carry: it registers the scheme
// "reeve" on blob.DefaultURLMux the first time. A later call replaces the
// client and run that every bucket opened from the URL uses, also those
// opened already (result.Open keeps one store per URL per process, and a
// process runs one flow run).
func Register(c *client.Client, flowRunID string) {
	current.Store(&target{c: c, runID: flowRunID})
	registerOnce.Do(func() { blob.DefaultURLMux().RegisterBucket(Scheme, &URLOpener{}) })
}

// URLOpener opens [URL] ("reeve://server"), with the client and run given
// to [Register].
type URLOpener struct{}

// OpenBucketURL opens the server's result store; u must be [URL].
func (*URLOpener) OpenBucketURL(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	if u.Host != "server" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("open bucket %s: the server's result store is %s, without a path or query", u.Redacted(), URL)
	}
	return blob.NewBucket(&bucket{}), nil
}

// NewBucket returns the server's result store through c for the flow run
// flowRunID (whose token c must carry), apart from [Register].
func NewBucket(c *client.Client, flowRunID string) *blob.Bucket {
	return blob.NewBucket(&bucket{fixed: &target{c: c, runID: flowRunID}})
}

// errNotImplemented is the error of the operations result stores never use.
var errNotImplemented = errors.New("the server's result store (" + URL + ") does not list, delete, sign URLs or write only if absent")

// errNotRegistered is the error of a bucket used before Register.
var errNotRegistered = errs.Errorf(errs.CodeInvalid,
	"the server's result store (%s) works in server runs only, where the runner connects it to the server: locally, give the flow a result store such as ./results or mem://name", URL)

// bucket is a driver.Bucket over the API's results routes.
type bucket struct {
	fixed *target // nil: the registered one
}

var _ driver.Bucket = (*bucket)(nil)

func (b *bucket) target() (*target, error) {
	if b.fixed != nil {
		return b.fixed, nil
	}
	if t := current.Load(); t != nil {
		return t, nil
	}
	return nil, errNotRegistered
}

// ErrorCode maps the client's error codes to gocloud's, so that a missing
// result is gcerrors.NotFound (result.Store.Get reports result.ErrNotFound).
func (b *bucket) ErrorCode(err error) gcerrors.ErrorCode {
	switch {
	case errors.Is(err, errNotImplemented):
		return gcerrors.Unimplemented
	case errors.Is(err, context.Canceled):
		return gcerrors.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return gcerrors.DeadlineExceeded
	}
	var e *errs.Error
	if !errors.As(err, &e) {
		return gcerrors.Unknown
	}
	switch e.Code {
	case errs.CodeNotFound:
		return gcerrors.NotFound
	case errs.CodeInvalid:
		return gcerrors.InvalidArgument
	case errs.CodeConflict:
		return gcerrors.FailedPrecondition
	case errs.CodeUnauthorized, errs.CodeForbidden:
		return gcerrors.PermissionDenied
	case errs.CodeInternal:
		return gcerrors.Internal
	}
	return gcerrors.Unknown
}

// As exposes no driver types.
func (b *bucket) As(any) bool { return false }

// ErrorAs lets blob's ErrorAs reach the client's *errs.Error.
func (b *bucket) ErrorAs(err error, i any) bool { return errors.As(err, i) }

// get reads a result.
func (b *bucket) get(ctx context.Context, key string) ([]byte, *driver.Attributes, error) {
	t, err := b.target()
	if err != nil {
		return nil, nil, err
	}
	var (
		value   []byte
		updated time.Time
	)
	if p, ok := t.pending.Load(key); ok {
		value, updated = p.(*pendingResult).value, p.(*pendingResult).at
	} else if value, updated, err = t.c.GetResult(ctx, t.runID, key); err != nil {
		return nil, nil, err
	}
	sum := md5.Sum(value)
	return value, &driver.Attributes{
		ContentType: "application/octet-stream",
		ModTime:     updated,
		Size:        int64(len(value)),
		MD5:         sum[:],
		ETag:        fmt.Sprintf(`"%x"`, sum),
	}, nil
}

// Attributes returns a result's size and time (it reads the result).
func (b *bucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	_, attrs, err := b.get(ctx, key)
	return attrs, err
}

// ListPaged is not implemented.
func (b *bucket) ListPaged(context.Context, *driver.ListOptions) (*driver.ListPage, error) {
	return nil, errNotImplemented
}

// NewRangeReader reads a result and serves the range asked for.
func (b *bucket) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	value, attrs, err := b.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if opts.BeforeRead != nil {
		if err := opts.BeforeRead(func(any) bool { return false }); err != nil {
			return nil, err
		}
	}
	data := value[min(offset, int64(len(value))):]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return &reader{Reader: bytes.NewReader(data), attrs: driver.ReaderAttributes{
		ContentType: attrs.ContentType, ModTime: attrs.ModTime, Size: attrs.Size,
	}}, nil
}

type reader struct {
	*bytes.Reader
	attrs driver.ReaderAttributes
}

func (r *reader) Close() error                         { return nil }
func (r *reader) Attributes() *driver.ReaderAttributes { return &r.attrs }
func (r *reader) As(any) bool                          { return false }

// NewTypedWriter returns a writer that buffers the result and writes it
// when closed.
func (b *bucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	t, err := b.target()
	if err != nil {
		return nil, err
	}
	if opts.IfNotExist {
		return nil, errNotImplemented
	}
	if opts.BeforeWrite != nil {
		if err := opts.BeforeWrite(func(any) bool { return false }); err != nil {
			return nil, err
		}
	}
	return &writer{ctx: ctx, t: t, key: key}, nil
}

type writer struct {
	ctx context.Context
	t   *target
	key string
	buf bytes.Buffer
}

func (w *writer) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *writer) Upload(r io.Reader) error {
	_, err := w.buf.ReadFrom(r)
	return err
}

// Close writes the result; a cancelled write writes nothing.
func (w *writer) Close() error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	return w.t.put(w.ctx, w.key, w.buf.Bytes())
}

// put writes a result: deferred when it is small and the results waiting
// to be sent are not too many, else with a request of its own (which the
// server checks against its limit).
func (t *target) put(ctx context.Context, key string, data []byte) error {
	n := int64(len(data))
	if t.sink == nil || n > min(MaxDeferred, max(t.limit.Load(), 1)) || t.pendingBytes.Load()+n > MaxPendingBytes {
		return t.c.PutResult(ctx, t.runID, key, data)
	}
	p := &pendingResult{value: bytes.Clone(data), at: time.Now()}
	if old, ok := t.pending.Swap(key, p); ok {
		t.pendingBytes.Add(-int64(len(old.(*pendingResult).value)))
	}
	t.pendingBytes.Add(n)
	t.sink.DeferResult(key, p.value)
	return nil
}

// Copy copies a result to another key.
func (b *bucket) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	t, err := b.target()
	if err != nil {
		return err
	}
	if opts.BeforeCopy != nil {
		if err := opts.BeforeCopy(func(any) bool { return false }); err != nil {
			return err
		}
	}
	value, _, err := b.get(ctx, srcKey)
	if err != nil {
		return err
	}
	return t.put(ctx, dstKey, value)
}

// Delete is not implemented.
func (b *bucket) Delete(context.Context, string, *driver.DeleteOptions) error {
	return errNotImplemented
}

// SignedURL is not implemented.
func (b *bucket) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errNotImplemented
}

// Close does nothing: the client is the caller's.
func (b *bucket) Close() error { return nil }
