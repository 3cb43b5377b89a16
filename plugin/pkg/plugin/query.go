package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/livesync/livesync-datasource/pkg/models"
)

// refResult is one refId's entry in /api/query's `results`.
type refResult struct {
	Frames []json.RawMessage `json:"frames"`
	Error  string            `json:"error"`
	Status int               `json:"status"`
}

type queryResponse struct {
	Results map[string]refResult `json:"results"`
}

// Headers Grafana passes on that the service understands: skip the response cache, count per dashboard.
var forwardedHeaders = []string{"X-Cache-Skip", "X-Dashboard-Uid"}

// DefaultMaxDataPoints is used when Grafana sends none (alert rules may not).
const DefaultMaxDataPoints = 1000

// batchKey groups the queries that one POST /api/query can answer: same range, interval and points.
type batchKey struct {
	from, to, intervalMs, maxDataPoints int64
}

type batch struct {
	key     batchKey
	queries []models.Query
}

// QueryData answers every query, each with its frames or its own error: one bad query never
// fails the others. Metrics, freshness and status queries go to /api/query, batched by range;
// annotations queries to /api/annotations, one request each.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	response := backend.NewQueryDataResponse()
	if problem := d.settings.Problem(); problem != "" {
		for _, q := range req.Queries {
			response.Responses[q.RefID] = backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourcePlugin, problem)
		}
		return response, nil
	}

	var batches []*batch
	index := map[batchKey]*batch{}
	for _, dq := range req.Queries {
		q, err := models.ParseQuery(dq.JSON)
		if err == nil {
			q.RefID = dq.RefID
			err = q.Validate()
		}
		if err != nil {
			response.Responses[dq.RefID] = backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, err.Error())
			continue
		}
		if q.Kind == models.KindAnnotations {
			response.Responses[dq.RefID] = d.queryAnnotations(ctx, q, dq.TimeRange)
			continue
		}
		key := batchKey{
			from:          dq.TimeRange.From.UnixMilli(),
			to:            dq.TimeRange.To.UnixMilli(),
			intervalMs:    max(1, dq.Interval.Milliseconds()),
			maxDataPoints: dq.MaxDataPoints,
		}
		if key.maxDataPoints <= 0 {
			key.maxDataPoints = DefaultMaxDataPoints
		}
		b := index[key]
		if b == nil {
			b = &batch{key: key}
			index[key] = b
			batches = append(batches, b)
		}
		b.queries = append(b.queries, q)
	}

	headers := map[string]string{}
	for _, name := range forwardedHeaders {
		if value := req.GetHTTPHeader(name); value != "" {
			headers[name] = value
		}
	}
	for _, b := range batches {
		for refID, res := range d.queryBatch(ctx, b, headers) {
			response.Responses[refID] = res
		}
	}
	return response, nil
}

// Query sends one /api/query request and converts its answer; exported for the integration test's
// comparison through the same conversion.
func (d *Datasource) queryBatch(ctx context.Context, b *batch, headers map[string]string) map[string]backend.DataResponse {
	body := models.QueryRequest{
		Range:         models.TimeRange{From: b.key.from, To: b.key.to},
		IntervalMs:    b.key.intervalMs,
		MaxDataPoints: b.key.maxDataPoints,
	}
	for _, q := range b.queries {
		body.Queries = append(body.Queries, q.ToService())
	}
	out := make(map[string]backend.DataResponse, len(b.queries))
	payload, _, err := d.client.do(ctx, http.MethodPost, "/api/query", body, headers)
	var apiErr *apiError
	if err != nil && !(errors.As(err, &apiErr) && hasResults(apiErr.Body)) {
		// No per-query answer: the same error for every query of the request.
		status := backend.StatusBadGateway
		source := backend.ErrorSourceDownstream
		if apiErr != nil {
			status = backend.Status(apiErr.Status)
		}
		backend.Logger.FromContext(ctx).Warn("LiveSync query failed", "error", err)
		for _, q := range b.queries {
			out[q.RefID] = backend.ErrDataResponseWithSource(status, source, err.Error())
		}
		return out
	}
	if apiErr != nil {
		payload = apiErr.Body
	}
	var parsed queryResponse
	if err := json.Unmarshal(payload, &parsed); err != nil {
		for _, q := range b.queries {
			out[q.RefID] = backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream,
				fmt.Sprintf("LiveSync returned an answer that is not JSON: %v", err))
		}
		return out
	}
	for _, q := range b.queries {
		out[q.RefID] = toDataResponse(parsed.Results, q)
	}
	return out
}

func hasResults(body []byte) bool {
	var parsed queryResponse
	return json.Unmarshal(body, &parsed) == nil && parsed.Results != nil
}

// toDataResponse is one query's answer: its frames, or the service's error with its status.
func toDataResponse(results map[string]refResult, q models.Query) backend.DataResponse {
	result, ok := results[q.RefID]
	if !ok {
		return backend.ErrDataResponseWithSource(backend.StatusInternal, backend.ErrorSourceDownstream, "LiveSync returned no result for this query.")
	}
	if result.Error != "" || result.Frames == nil {
		status := result.Status
		if status == 0 || status > math.MaxInt32 {
			status = http.StatusInternalServerError
		}
		message := result.Error
		if message == "" {
			message = "LiveSync returned neither frames nor an error for this query."
		}
		return backend.ErrDataResponseWithSource(backend.Status(status), backend.ErrorSourceDownstream, message)
	}
	frames := make(data.Frames, 0, len(result.Frames))
	for _, raw := range result.Frames {
		frame, err := toFrame(raw, q)
		if err != nil {
			return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
		}
		frames = append(frames, frame)
	}
	return backend.DataResponse{Frames: frames}
}
