package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// DefaultRetry is the reconnection delay until the service names one with `retry:`.
var DefaultRetry = 3 * time.Second

// Stream events the backend sends on ds/<uid>/<dataset>, one row each. hello, change and
// freshness are the service's own server-sent events; trouble and recovered say the stream to
// the service broke and came back.
const (
	EventHello     = "hello"
	EventChange    = "change"
	EventFreshness = "freshness"
	EventTrouble   = "trouble"
)

// SubscribeStream lets any viewer of the data source follow a dataset the service knows: the
// channel's path is the dataset's name.
func (d *Datasource) SubscribeStream(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	if !datasetName.MatchString(req.Path) || d.settings.Problem() != "" {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	_, _, err := d.client.do(ctx, http.MethodGet, "/api/datasets/"+req.Path, nil, nil)
	var apiErr *apiError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	// Any other failure still subscribes: the stream reports trouble and reconnects.
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

// PublishStream: the channels are the service's; nobody publishes to them from a browser.
func (d *Datasource) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream follows the dataset's server-sent events (GET /api/datasets/<name>/events) until
// Grafana ends the channel (its last subscriber left), reconnecting after the service's `retry:`
// delay. Grafana runs one RunStream per channel however many panels listen, so each dataset on
// screen costs the service one connection per Grafana, and no Grafana token is needed anywhere.
func (d *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	logger := backend.Logger.FromContext(ctx).With("dataset", req.Path)
	retry := DefaultRetry
	troubled := false
	for {
		err := d.followEvents(ctx, req.Path, sender, &retry, &troubled)
		if ctx.Err() != nil {
			return nil
		}
		message := "the event stream ended"
		if err != nil {
			message = err.Error()
		}
		logger.Warn("LiveSync event stream lost; reconnecting", "error", message, "retry", retry)
		if !troubled {
			troubled = true
			if err := sendEvent(sender, EventTrouble, json.RawMessage(mustJSON(map[string]string{"message": message}))); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}

// followEvents reads one connection of the event stream, sending each event as a row.
func (d *Datasource) followEvents(ctx context.Context, dataset string, sender *backend.StreamSender, retry *time.Duration, troubled *bool) error {
	req, err := d.client.newRequest(ctx, http.MethodGet, "/api/datasets/"+dataset+"/events", nil, map[string]string{"Accept": "text/event-stream"})
	if err != nil {
		return err
	}
	res, err := d.client.stream.Do(req)
	if err != nil {
		return d.client.unreachable(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return &apiError{Status: res.StatusCode, Path: "/api/datasets/" + dataset + "/events", Where: d.client.base}
	}
	scanner := bufio.NewScanner(res.Body)
	scanner.Buffer(make([]byte, 64*1024), 4<<20)
	event, payload := "", []string{}
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" {
			if len(payload) > 0 {
				if event == "" {
					event = "message"
				}
				if event == EventHello && *troubled {
					*troubled = false
				}
				if err := sendEvent(sender, event, json.RawMessage(strings.Join(payload, "\n"))); err != nil {
					return err
				}
			}
			event, payload = "", payload[:0]
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "event":
			event = value
		case "data":
			payload = append(payload, value)
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms > 0 {
				*retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := scanner.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("the event stream from LiveSync at %s broke: %w", d.client.base, err)
	}
	return nil
}

// eventFrame is one event as a frame row. The schema never changes, so Grafana Live appends the
// rows of a channel into one frame for its subscribers.
func eventFrame(event string, payload json.RawMessage, at time.Time) *data.Frame {
	var fields struct {
		Version *float64 `json:"version"`
		From    *float64 `json:"from"`
		To      *float64 `json:"to"`
	}
	_ = json.Unmarshal(payload, &fields)
	return data.NewFrame("events",
		data.NewField("time", nil, []time.Time{at}),
		data.NewField("event", nil, []string{event}),
		data.NewField("version", nil, []*float64{fields.Version}),
		data.NewField("from", nil, []*float64{fields.From}),
		data.NewField("to", nil, []*float64{fields.To}),
		data.NewField("json", nil, []string{string(payload)}),
	)
}

// now is when an event is sent; a variable so tests can fix it.
var now = time.Now

func sendEvent(sender *backend.StreamSender, event string, payload json.RawMessage) error {
	return sender.SendFrame(eventFrame(event, payload, now().UTC()), data.IncludeAll)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
