// Package client is the typed Go client of the Reeve server's HTTP API,
// used by the reeve CLI, by agents and by flow programs running on the
// server. It has one method per route of [api.Routes], each taking a
// context first and returning the wire types of package api.
//
// # Connecting
//
// [New] takes the server's base URL and an API token (a run token, an
// agent token or a user's token: the server checks the token's role):
//
//	c, err := client.New("http://127.0.0.1:4200", os.Getenv("REEVE_TOKEN"))
//	if err != nil {
//		return err
//	}
//	created, err := c.CreateFlowRun(ctx, api.CreateFlowRun{
//		Flow:   "etl",
//		Params: json.RawMessage(`{"day": "2026-01-02"}`),
//	})
//	if err != nil {
//		return err
//	}
//	final, err := c.FollowLogs(ctx, created.FlowRun.ID, client.LogQuery{}, func(l api.LogLine) error {
//		fmt.Println(l.Time.Format(time.TimeOnly), l.Level, l.Message)
//		return nil
//	})
//	if err != nil {
//		return err
//	}
//	fmt.Println("flow run", final.ID, "ended", final.State.Kind)
//
// # Errors
//
// A failed call returns an error that says which operation failed and
// wraps a *[reeve.Error] with the code and message the server sent, so
// errors.Is works across the wire:
//
//	_, err := c.FlowRun(ctx, id)
//	if errors.Is(err, reeve.ErrNotFound) {
//		// no such run: err says "get flow run <id>: " and the server's message
//	}
//
// An answer that is not the server's (a proxy's error page) is mapped from
// its HTTP status. A server that cannot be reached, or that does not answer
// in time, is [reeve.ErrUnavailable]; a cancelled context is the context's
// error.
//
// # Timeouts
//
// Each call ends after the client's timeout (see [WithTimeout]) unless its
// context ends first. [Client.Claim] waits longer, as long as the wait it
// asks the server for, and [Client.FollowLogs] streams until the flow run
// ends or its context is cancelled.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/errs"
)

// DefaultTimeout is how long a call waits for the server's answer unless
// WithTimeout says otherwise.
const DefaultTimeout = 30 * time.Second

// maxErrorBody is how much of an error answer the client reads.
const maxErrorBody = 64 << 10

// Client calls the API of one Reeve server. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[:port][/prefix], without a trailing slash
	token     string
	http      *http.Client
	userAgent string
	timeout   time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (for its
// transport: TLS settings, proxies, tracing). Leave hc.Timeout zero: it
// would cut long-polling claims and log streams; use WithTimeout instead.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}

// WithUserAgent sets the User-Agent of the client's requests, e.g.
// "reeve-agent/1.2 (host-7)".
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithTimeout sets how long a call waits for the server's answer;
// 0 means no limit but the context's. The default is DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// New returns a client of the server at baseURL (such as
// "http://127.0.0.1:4200") that sends token, if not empty, as
// "Authorization: Bearer <token>".
func New(baseURL, token string, opts ...Option) (*Client, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	for _, r := range token {
		if r <= ' ' || r >= 0x7f {
			return nil, errs.Errorf(errs.CodeInvalid, "reeve client: the API token has a space, a line break or a non-ASCII character: copy it again (tokens look like reeve_...)")
		}
	}
	c := &Client{base: base, token: token, http: &http.Client{}, userAgent: "reeve-client", timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	switch {
	case c.http == nil:
		return nil, errs.Errorf(errs.CodeInvalid, "reeve client: WithHTTPClient(nil): give an *http.Client, or leave the option out")
	case c.timeout < 0:
		return nil, errs.Errorf(errs.CodeInvalid, "reeve client: WithTimeout(%v) is negative: use 0 for no limit", c.timeout)
	}
	return c, nil
}

// parseBase checks a server URL and returns it without a trailing slash
// (or a trailing API prefix, for a URL copied from an API path).
func parseBase(raw string) (string, error) {
	bad := func(why string) error {
		return errs.Errorf(errs.CodeInvalid, "reeve client: server URL %q %s: give one like http://127.0.0.1:4200", raw, why)
	}
	if raw == "" {
		return "", errs.Errorf(errs.CodeInvalid, "reeve client: no server URL: give one like http://127.0.0.1:4200 (REEVE_API_URL)")
	}
	u, err := url.Parse(raw)
	switch {
	case !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://"):
		return "", bad("does not start with http:// or https://")
	case err != nil:
		return "", bad("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", bad("does not start with http:// or https://")
	case u.Host == "" || u.Hostname() == "":
		return "", bad("has no host")
	case u.User != nil:
		return "", bad("has a user name or password: send an API token instead")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", bad("has a query or a fragment")
	}
	path := strings.TrimSuffix(strings.TrimRight(u.EscapedPath(), "/"), api.Prefix)
	return u.Scheme + "://" + u.Host + strings.TrimRight(path, "/"), nil
}

// URL returns the base URL of the server the client calls.
func (c *Client) URL() string { return c.base }

// do calls an API route (path is under api.Prefix, its parameters escaped),
// sending in as JSON unless it is nil and decoding the answer into out
// unless it is nil or the answer is 204 No Content.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.call(ctx, c.timeout, method, api.Prefix+path, query, in, out)
}

// call is do with a timeout and a path from the server's root.
func (c *Client) call(ctx context.Context, timeout time.Duration, method, path string, query url.Values, in, out any) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w: %w",
			errs.Errorf(errs.CodeUnavailable, "the Reeve server at %s did not answer within %v", c.base, timeout), context.DeadlineExceeded))
		defer cancel()
	}
	resp, err := c.send(ctx, method, path, query, in, nil)
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil || !isJSONError(err) {
			return c.transportError(ctx, err)
		}
		return errs.Errorf(errs.CodeInternal, "%s %s: the answer of %s is not the JSON this client reads (%v): is it a Reeve server, as new as the client?", method, path, c.base, err)
	}
	return nil
}

// send sends a request and returns the answer if its status is 2xx, or
// else an error (closing the answer's body).
func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any, header http.Header) (*http.Response, error) {
	if strings.Contains(path, "//") || strings.HasSuffix(path, "/") {
		return nil, errs.Errorf(errs.CodeInvalid, "an ID or a name is empty: give one")
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, errs.Errorf(errs.CodeInvalid, "encode the request: %v", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, errs.Errorf(errs.CodeInvalid, "build the request %s %s: %v", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer drain(resp.Body)
	return nil, c.responseError(resp)
}

// transportError explains a request that got no (whole) answer: the
// context's error if the caller's context ended, ErrUnavailable if the
// server could not be reached or did not answer in time.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx) // the caller's, or the timeout's of call
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // it repeats the method and URL
	}
	return fmt.Errorf("%w: %w", errs.Errorf(errs.CodeUnavailable, "cannot reach the Reeve server at %s (is `reeve server` running?)", c.base), err)
}

// responseError turns an answer with a status other than 2xx into a
// *reeve.Error: the server's own (an api.ErrorBody) as it is, any other
// (a proxy's page) by its status, with an excerpt.
func (c *Client) responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err == nil && eb.Error.Message != "" {
		code := errs.Code(eb.Error.Code)
		if !knownCode(code) {
			code = codeOfStatus(resp.StatusCode)
		}
		return &errs.Error{Code: code, Message: eb.Error.Message}
	}
	return &errs.Error{Code: codeOfStatus(resp.StatusCode), Message: fmt.Sprintf(
		"%s %s: %s answered %s, not with a Reeve error (is a proxy in between?): %s",
		resp.Request.Method, resp.Request.URL.Path, c.base, resp.Status, excerpt(body))}
}

// knownCode reports whether code is one of the reeve error codes.
func knownCode(code errs.Code) bool {
	switch code {
	case errs.CodeInvalid, errs.CodeNotFound, errs.CodeConflict, errs.CodeUnauthorized,
		errs.CodeForbidden, errs.CodeUnavailable, errs.CodeInternal:
		return true
	}
	return false
}

// codeOfStatus maps an HTTP status back to an error code: the inverse of
// the server's table, widened for statuses proxies and gateways send.
func codeOfStatus(status int) errs.Code {
	switch status {
	case http.StatusNotFound, http.StatusGone:
		return errs.CodeNotFound
	case http.StatusConflict, http.StatusPreconditionFailed:
		return errs.CodeConflict
	case http.StatusUnauthorized, http.StatusProxyAuthRequired:
		return errs.CodeUnauthorized
	case http.StatusForbidden:
		return errs.CodeForbidden
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return errs.CodeUnavailable
	}
	if status >= 400 && status < 500 {
		return errs.CodeInvalid
	}
	return errs.CodeInternal
}

// excerpt returns the start of a body, on one line, for an error message.
func excerpt(body []byte) string {
	const max = 200
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "\uFFFD")), " ")
	if s == "" {
		return "(empty body)"
	}
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// isJSONError reports whether err is about the JSON of an answer rather
// than about reading it.
func isJSONError(err error) bool {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	return errors.As(err, &syntax) || errors.As(err, &typ) || errors.Is(err, io.EOF)
}

// drain reads what is left of a body (a little) and closes it, so the
// connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

// escape escapes one path segment.
func escape(s string) string { return url.PathEscape(s) }
