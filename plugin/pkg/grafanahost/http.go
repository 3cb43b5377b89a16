package grafanahost

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// SettingsHeader carries the data source's instance settings with each request (base64 of the
// JSON of DataSource): Grafana sends them to the plugin with every call, decrypted secrets
// included, and the preview keeps them, so the host keeps none.
const SettingsHeader = "X-Livesync-Host-Datasource"

// Grafana's defaults for a query that names none (pkg/services/query).
const (
	defaultIntervalMs    = 1000
	defaultMaxDataPoints = 100
)

// Headers of a /api/ds/query request that reach the plugin (as `http_<name>`).
var forwardedHeaders = []string{"X-Cache-Skip", "X-Dashboard-Uid", "X-Panel-Id", "X-Query-Group-Id"}

// DataSource is a data source's settings as the preview keeps them.
type DataSource struct {
	ID             int64             `json:"id"`
	UID            string            `json:"uid"`
	Name           string            `json:"name"`
	Type           string            `json:"type"`
	URL            string            `json:"url"`
	JSONData       json.RawMessage   `json:"jsonData"`
	SecureJSONData map[string]string `json:"secureJsonData"`
	// Updated (epoch ms) changes on every save: the plugin makes a new instance then.
	Updated int64 `json:"updated"`
}

// PluginContext is what Grafana sends with each call for this data source (org 1).
func (ds DataSource) PluginContext() backend.PluginContext {
	return backend.PluginContext{
		OrgID:    1,
		PluginID: ds.Type,
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: ds.ID, UID: ds.UID, Name: ds.Name, Type: ds.Type, URL: ds.URL,
			JSONData:                ds.JSONData,
			DecryptedSecureJSONData: ds.SecureJSONData,
			Updated:                 time.UnixMilli(ds.Updated),
		},
	}
}

// EncodeSettings is the SettingsHeader value for a data source.
func EncodeSettings(ds DataSource) string {
	raw, _ := json.Marshal(ds)
	return base64.StdEncoding.EncodeToString(raw)
}

func settingsOf(r *http.Request) (DataSource, error) {
	var ds DataSource
	value := r.Header.Get(SettingsHeader)
	if value == "" {
		return ds, fmt.Errorf("the request has no %s header: the host does not know the data source", SettingsHeader)
	}
	raw, err := base64.StdEncoding.DecodeString(value)
	if err == nil {
		err = json.Unmarshal(raw, &ds)
	}
	if err != nil {
		return ds, fmt.Errorf("the %s header is not base64 JSON of the data source: %w", SettingsHeader, err)
	}
	return ds, nil
}

// Handler serves the parts of Grafana's HTTP API that reach a data source's backend, with
// Grafana's request and response shapes:
//
//	POST /api/ds/query                                  → QueryData
//	GET  /api/datasources/uid/<uid>/health              → CheckHealth
//	*    /api/datasources/uid/<uid>/resources/<path>    → CallResource
//	GET  /api/live/ds/<uid>/<path>                      → SubscribeStream, then RunStream, each
//	     packet as a server-sent event (the preview's wire for Grafana Live's ds/ channels)
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/ds/query", func(w http.ResponseWriter, r *http.Request) { query(b, w, r) })
	mux.HandleFunc("GET /api/datasources/uid/{uid}/health", func(w http.ResponseWriter, r *http.Request) { health(b, w, r) })
	mux.HandleFunc("/api/datasources/uid/{uid}/resources/{path...}", func(w http.ResponseWriter, r *http.Request) { resource(b, w, r) })
	mux.HandleFunc("GET /api/live/ds/{uid}/{path...}", func(w http.ResponseWriter, r *http.Request) { stream(b, w, r) })
	return mux
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// okOrBadRequest is how Grafana answers a plugin's verdict: 200 when it went well, else 400 with
// the same body.
func okOrBadRequest(ok bool) int {
	if ok {
		return http.StatusOK
	}
	return http.StatusBadRequest
}

func message(w http.ResponseWriter, status int, text string) {
	writeJSON(w, status, map[string]string{"message": text})
}

// dataSourceFor checks the settings and that they are the data source the URL or query names.
func dataSourceFor(w http.ResponseWriter, r *http.Request, uid string) (DataSource, bool) {
	ds, err := settingsOf(r)
	if err != nil {
		message(w, http.StatusBadRequest, err.Error())
		return ds, false
	}
	if uid != ds.UID {
		message(w, http.StatusNotFound, "Data source not found")
		return ds, false
	}
	return ds, true
}

// metricRequest is /api/ds/query's body (Grafana's dtos.MetricRequest).
type metricRequest struct {
	From    string            `json:"from"`
	To      string            `json:"to"`
	Queries []json.RawMessage `json:"queries"`
}

type queryHead struct {
	RefID      string `json:"refId"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	IntervalMs    float64 `json:"intervalMs"`
	MaxDataPoints int64   `json:"maxDataPoints"`
}

func epochMs(name, value string) (time.Time, error) {
	ms, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not epoch milliseconds (the only form the preview's host reads)", name, value)
	}
	return time.UnixMilli(ms), nil
}

// query is /api/ds/query: {from, to, queries:[{refId, datasource:{uid}, intervalMs,
// maxDataPoints, ...model}]} → {results:{<refId>:{status, frames}|{status, error}}}, 200 when
// every query succeeded, else 400 with the same body (Grafana's answer without the
// datasourceQueryMultiStatus feature).
func query(b Backend, w http.ResponseWriter, r *http.Request) {
	var body metricRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&body); err != nil {
		message(w, http.StatusBadRequest, "bad request data: "+err.Error())
		return
	}
	if len(body.Queries) == 0 {
		message(w, http.StatusBadRequest, "No queries found")
		return
	}
	from, err := epochMs("from", body.From)
	var to time.Time
	if err == nil {
		to, err = epochMs("to", body.To)
	}
	if err != nil {
		message(w, http.StatusBadRequest, err.Error())
		return
	}
	ds, err := settingsOf(r)
	if err != nil {
		message(w, http.StatusBadRequest, err.Error())
		return
	}
	req := &backend.QueryDataRequest{PluginContext: ds.PluginContext(), Headers: map[string]string{}}
	for i, raw := range body.Queries {
		var head queryHead
		if err := json.Unmarshal(raw, &head); err != nil {
			message(w, http.StatusBadRequest, fmt.Sprintf("queries[%d] is not a query: %v", i, err))
			return
		}
		if head.Datasource == nil || head.Datasource.UID != ds.UID {
			message(w, http.StatusBadRequest, fmt.Sprintf("queries[%d]: data source not found", i))
			return
		}
		if head.RefID == "" {
			head.RefID = "A"
		}
		if head.IntervalMs <= 0 {
			head.IntervalMs = defaultIntervalMs
		}
		if head.MaxDataPoints <= 0 {
			head.MaxDataPoints = defaultMaxDataPoints
		}
		req.Queries = append(req.Queries, backend.DataQuery{
			RefID:         head.RefID,
			JSON:          raw,
			TimeRange:     backend.TimeRange{From: from, To: to},
			Interval:      time.Duration(head.IntervalMs * float64(time.Millisecond)),
			MaxDataPoints: head.MaxDataPoints,
		})
	}
	for _, name := range forwardedHeaders {
		if value := r.Header.Get(name); value != "" {
			req.SetHTTPHeader(name, value)
		}
	}
	res, err := b.QueryData(r.Context(), req)
	if err != nil {
		message(w, http.StatusInternalServerError, "Query data error: "+err.Error())
		return
	}
	failed := false
	for _, one := range res.Responses {
		failed = failed || one.Error != nil
	}
	writeJSON(w, okOrBadRequest(!failed), res)
}

// health is /api/datasources/uid/<uid>/health: {status: OK|ERROR|UNKNOWN, message, details?},
// 200 when OK, else 400.
func health(b Backend, w http.ResponseWriter, r *http.Request) {
	ds, ok := dataSourceFor(w, r, r.PathValue("uid"))
	if !ok {
		return
	}
	res, err := b.CheckHealth(r.Context(), ds.PluginContext())
	if err != nil {
		message(w, http.StatusInternalServerError, "Plugin health check failed: "+err.Error())
		return
	}
	payload := map[string]any{"status": res.Status.String(), "message": res.Message}
	if len(res.JSONDetails) > 0 {
		var details any
		if err := json.Unmarshal(res.JSONDetails, &details); err != nil {
			message(w, http.StatusInternalServerError, "Failed to unmarshal detailed response from backend plugin")
			return
		}
		payload["details"] = details
	}
	writeJSON(w, okOrBadRequest(res.Status == backend.HealthStatusOk), payload)
}

// resource is /api/datasources/uid/<uid>/resources/<path>: the plugin's status, headers and body.
func resource(b Backend, w http.ResponseWriter, r *http.Request) {
	ds, ok := dataSourceFor(w, r, r.PathValue("uid"))
	if !ok {
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		message(w, http.StatusBadRequest, "could not read the request body: "+err.Error())
		return
	}
	path := r.PathValue("path")
	rawURL := path
	if r.URL.RawQuery != "" {
		rawURL += "?" + r.URL.RawQuery
	}
	headers := map[string][]string{}
	for name, values := range r.Header {
		if name != SettingsHeader && name != "Cookie" && name != "Authorization" {
			headers[name] = values
		}
	}
	res, err := b.CallResource(r.Context(), &backend.CallResourceRequest{
		PluginContext: ds.PluginContext(), Path: path, Method: r.Method, URL: rawURL, Headers: headers, Body: payload,
	})
	if err != nil {
		message(w, http.StatusInternalServerError, "Failed to call resource: "+err.Error())
		return
	}
	for name, values := range res.Headers {
		for _, value := range values {
			w.Header().Add(name, value)
		}
	}
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Body)
}

// stream runs a ds/<uid>/<path> channel while the request lasts. A channel the plugin refuses
// answers 404 (Grafana's "not found" for the subscription); otherwise each packet is one
// `data:` event, and the stream's end or error one `event: error`.
func stream(b Backend, w http.ResponseWriter, r *http.Request) {
	ds, ok := dataSourceFor(w, r, r.PathValue("uid"))
	if !ok {
		return
	}
	path := r.PathValue("path")
	pc := ds.PluginContext()
	sub, err := b.SubscribeStream(r.Context(), &backend.SubscribeStreamRequest{PluginContext: pc, Path: path})
	if err != nil {
		message(w, http.StatusInternalServerError, "subscribe: "+err.Error())
		return
	}
	if sub.Status != backend.SubscribeStreamStatusOK {
		status := http.StatusNotFound
		if sub.Status == backend.SubscribeStreamStatusPermissionDenied {
			status = http.StatusForbidden
		}
		message(w, status, fmt.Sprintf("subscription to ds/%s/%s refused", ds.UID, path))
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	err = b.RunStream(r.Context(), &backend.RunStreamRequest{PluginContext: pc, Path: path}, func(packet json.RawMessage) error {
		if _, err := fmt.Fprintf(w, "data: %s\n\n", strings.ReplaceAll(string(packet), "\n", "")); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if r.Context().Err() != nil {
		return
	}
	text := "the stream ended"
	if err != nil {
		text = err.Error()
	}
	raw, _ := json.Marshal(map[string]string{"message": text})
	_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", raw)
}
