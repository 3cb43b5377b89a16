package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/livesync/livesync-datasource/pkg/models"
)

// AnnotationLimit is how many annotations one query asks for: a month of hourly runs, few
// enough to draw.
const AnnotationLimit = 1000

// AnnotationsFrameName names the frame an annotations query answers with.
const AnnotationsFrameName = "LiveSync sync state changes"

// regionColors are Grafana's palette colours of the regions, by the kind tag the service puts on
// them: failures red, resyncs after a store loss orange, pauses grey, whatever colour the
// annotation layer has.
var regionColors = map[string]string{
	"failure": "#F2495C",
	"resync":  "#FF9830",
	"pause":   "#8E8E8E",
}

// annotationRecord is one entry of GET /api/annotations's answer.
type annotationRecord struct {
	Time    json.RawMessage `json:"time"`
	TimeEnd json.RawMessage `json:"timeEnd"`
	Title   string          `json:"title"`
	Text    string          `json:"text"`
	Tags    []string        `json:"tags"`
}

// queryAnnotations answers an annotations query from GET /api/annotations: one row per state
// change (a region) or big batch (a point), as Grafana's annotation support reads frames
// (time, timeEnd, title, text, tags, color).
func (d *Datasource) queryAnnotations(ctx context.Context, q models.Query, tr backend.TimeRange) backend.DataResponse {
	params := url.Values{}
	params.Set("from", strconv.FormatInt(tr.From.UnixMilli(), 10))
	params.Set("to", strconv.FormatInt(tr.To.UnixMilli(), 10))
	params.Set("limit", strconv.Itoa(AnnotationLimit))
	if q.Dataset != "" {
		params.Set("dataset", q.Dataset)
	}
	if q.AnnotationKinds != nil {
		params.Set("kinds", strings.Join(q.AnnotationKinds, ","))
	}
	if q.MinRecords > 0 {
		params.Set("minRecords", strconv.Itoa(q.MinRecords))
	}
	payload, _, err := d.client.do(ctx, http.MethodGet, "/api/annotations?"+params.Encode(), nil, nil)
	if err != nil {
		status := backend.StatusBadGateway
		var apiErr *apiError
		if errors.As(err, &apiErr) {
			status = backend.Status(apiErr.Status)
		}
		return backend.ErrDataResponseWithSource(status, backend.ErrorSourceDownstream, err.Error())
	}
	var records []annotationRecord
	if err := json.Unmarshal(payload, &records); err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream,
			fmt.Sprintf("LiveSync answered /api/annotations with something that is not a list of annotations: %v", err))
	}
	frame, err := annotationsFrame(records, q.RefID)
	if err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
	}
	return backend.DataResponse{Frames: data.Frames{frame}}
}

// annotationsFrame is the service's annotations as one frame; a record without an end ends
// where it starts (a point).
func annotationsFrame(records []annotationRecord, refID string) (*data.Frame, error) {
	n := len(records)
	times, ends := make([]time.Time, n), make([]time.Time, n)
	titles, texts := make([]string, n), make([]string, n)
	tags, colors := make([]json.RawMessage, n), make([]*string, n)
	for i, r := range records {
		start, err := epochOf(r.Time)
		if err != nil || start == nil {
			return nil, fmt.Errorf("LiveSync returned an annotation without a valid time (%s): %v", r.Time, err)
		}
		end, err := epochOf(r.TimeEnd)
		if err != nil {
			return nil, fmt.Errorf("LiveSync returned an annotation with an invalid timeEnd (%s): %v", r.TimeEnd, err)
		}
		if end == nil {
			end = start
		}
		times[i], ends[i] = *start, *end
		titles[i], texts[i] = r.Title, r.Text
		if r.Tags == nil {
			r.Tags = []string{}
		}
		tags[i], _ = json.Marshal(r.Tags)
		for _, tag := range r.Tags {
			if color, ok := regionColors[tag]; ok {
				colors[i] = &color
				break
			}
		}
	}
	frame := data.NewFrame(AnnotationsFrameName,
		data.NewField("time", nil, times),
		data.NewField("timeEnd", nil, ends),
		data.NewField("title", nil, titles),
		data.NewField("text", nil, texts),
		data.NewField("tags", nil, tags),
		data.NewField("color", nil, colors),
	)
	frame.RefID = refID
	return frame, nil
}

// epochOf reads a time the service sends as epoch milliseconds or an ISO 8601 string; nil when
// absent.
func epochOf(raw json.RawMessage) (*time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var ms float64
	if err := json.Unmarshal(raw, &ms); err == nil {
		t := time.UnixMilli(int64(ms)).UTC()
		return &t, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, fmt.Errorf("neither epoch milliseconds nor a date")
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return nil, err
	}
	t = t.UTC()
	return &t, nil
}
