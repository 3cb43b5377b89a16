package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client calls the service's HTTP API with the API key. It is built once per data source
// instance and closed with it.
type client struct {
	base   string
	apiKey string
	// http is for requests that end: queries, health, resources.
	http *http.Client
	// stream is for the events stream, which never ends on its own: no overall timeout.
	stream *http.Client
}

// requestTimeout bounds a query, health or resource call; Grafana's own data-source timeout is 30s.
const requestTimeout = 30 * time.Second

func newClient(base, apiKey string) *client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = requestTimeout
	return &client{
		base:   base,
		apiKey: apiKey,
		http:   &http.Client{Transport: transport, Timeout: requestTimeout},
		stream: &http.Client{Transport: transport},
	}
}

func (c *client) close() {
	c.http.CloseIdleConnections()
	c.stream.CloseIdleConnections()
}

// apiError is a non-2xx answer: the status, the service's message and body.
type apiError struct {
	Status  int
	Path    string
	Message string
	Body    []byte
	// Where is the service URL, for messages.
	Where string
}

// Error words a failed call the way the frontend does (errors.ts describeFetchError).
func (e *apiError) Error() string {
	suffix := ""
	if e.Message != "" {
		suffix = ": " + e.Message
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return fmt.Sprintf("LiveSync rejected the API key (401)%s. Check the API key in the data source settings.", suffix)
	case http.StatusForbidden:
		return fmt.Sprintf("Access denied (403) calling LiveSync %s%s.", e.Path, suffix)
	case http.StatusNotFound:
		return fmt.Sprintf("LiveSync at %s has no %s (404)%s. Check that the URL is the service's root.", e.Where, e.Path, suffix)
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return fmt.Sprintf("Could not reach LiveSync at %s%s.", e.Where, suffix)
	case http.StatusServiceUnavailable:
		return fmt.Sprintf("LiveSync is unavailable (503)%s.", suffix)
	default:
		return fmt.Sprintf("LiveSync answered %d %s on %s%s.", e.Status, http.StatusText(e.Status), e.Path, suffix)
	}
}

// unreachable words a call that got no answer at all.
func (c *client) unreachable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("Could not reach LiveSync at %s: %w.", c.base, err) //nolint:staticcheck // a sentence shown to users
}

func (c *client) newRequest(ctx context.Context, method, path string, body any, headers map[string]string) (*http.Request, error) {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, reader)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	for name, value := range headers {
		req.Header.Set(name, value)
	}
	return req, nil
}

// do sends a request and reads the whole answer. A non-2xx answer is an *apiError that keeps the body.
func (c *client) do(ctx context.Context, method, path string, body any, headers map[string]string) ([]byte, int, error) {
	req, err := c.newRequest(ctx, method, path, body, headers)
	if err != nil {
		return nil, 0, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, 0, c.unreachable(err)
	}
	defer res.Body.Close()
	payload, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return nil, res.StatusCode, c.unreachable(err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return payload, res.StatusCode, &apiError{
			Status:  res.StatusCode,
			Path:    strings.SplitN(path, "?", 2)[0],
			Message: messageOf(payload),
			Body:    payload,
			Where:   c.base,
		}
	}
	return payload, res.StatusCode, nil
}

// messageOf is the service's error message (`{"message": "..."}`), or a short text body.
func messageOf(payload []byte) string {
	var body struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(payload, &body) == nil {
		return body.Message
	}
	text := strings.TrimSpace(string(payload))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	return text
}
