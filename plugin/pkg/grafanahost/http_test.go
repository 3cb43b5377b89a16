package grafanahost

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// fake answers as a plugin would and records what it was asked.
type fake struct {
	query    *backend.QueryDataRequest
	resource *backend.CallResourceRequest
	health   backend.HealthStatus
	refuse   bool
}

func (f *fake) QueryData(_ context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	f.query = req
	res := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		if q.RefID == "bad" {
			res.Responses[q.RefID] = backend.ErrDataResponseWithSource(backend.StatusNotFound, backend.ErrorSourceDownstream, "unknown dataset")
			continue
		}
		frame := data.NewFrame("f", data.NewField("time", nil, []time.Time{q.TimeRange.From}))
		frame.RefID = q.RefID
		res.Responses[q.RefID] = backend.DataResponse{Frames: data.Frames{frame}}
	}
	return res, nil
}

func (f *fake) CheckHealth(_ context.Context, pc backend.PluginContext) (*backend.CheckHealthResult, error) {
	return &backend.CheckHealthResult{Status: f.health, Message: "said by " + pc.DataSourceInstanceSettings.Name, JSONDetails: []byte(`{"verdict":"warning"}`)}, nil
}

func (f *fake) CallResource(_ context.Context, req *backend.CallResourceRequest) (*backend.CallResourceResponse, error) {
	f.resource = req
	return &backend.CallResourceResponse{Status: http.StatusTeapot, Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: []byte(`{"datasets":[]}`)}, nil
}

func (f *fake) SubscribeStream(context.Context, *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	if f.refuse {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

func (f *fake) RunStream(_ context.Context, req *backend.RunStreamRequest, send func(json.RawMessage) error) error {
	if err := send(json.RawMessage(`{"data":{"values":[["` + req.Path + `"]]}}`)); err != nil {
		return err
	}
	return errors.New("the service went away")
}

var ds = DataSource{ID: 1, UID: "livesync", Name: "LiveSync", Type: "livesync-datasource", JSONData: json.RawMessage(`{"url":"http://x"}`), SecureJSONData: map[string]string{"apiKey": "k"}, Updated: 5}

func call(t *testing.T, f *fake, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	server := httptest.NewServer(Handler(f))
	t.Cleanup(server.Close)
	req, _ := http.NewRequest(method, server.URL+path, strings.NewReader(body))
	req.Header.Set(SettingsHeader, EncodeSettings(ds))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	payload, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(payload)
}

func TestDsQueryIsGrafanasContract(t *testing.T) {
	f := &fake{}
	status, body := call(t, f, http.MethodPost, "/api/ds/query", `{"from":"1764000000000","to":"1764003600000","queries":[
		{"refId":"A","datasource":{"uid":"livesync","type":"livesync-datasource"},"intervalMs":60000,"maxDataPoints":500,"dataset":"demo"},
		{"datasource":{"uid":"livesync"},"dataset":"demo"}]}`, map[string]string{"X-Cache-Skip": "true"})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	q := f.query.Queries
	if len(q) != 2 || q[0].RefID != "A" || q[0].Interval != time.Minute || q[0].MaxDataPoints != 500 ||
		q[0].TimeRange.From.UnixMilli() != 1764000000000 || q[0].TimeRange.To.UnixMilli() != 1764003600000 {
		t.Fatalf("queries %+v", q)
	}
	// Grafana's defaults for what a query leaves out.
	if q[1].RefID != "A" || q[1].Interval != time.Second || q[1].MaxDataPoints != 100 {
		t.Errorf("defaults: %+v", q[1])
	}
	if !strings.Contains(string(q[0].JSON), `"dataset":"demo"`) {
		t.Errorf("the model is not passed whole: %s", q[0].JSON)
	}
	settings := f.query.PluginContext.DataSourceInstanceSettings
	if settings.UID != "livesync" || settings.DecryptedSecureJSONData["apiKey"] != "k" || f.query.GetHTTPHeader("X-Cache-Skip") != "true" {
		t.Errorf("plugin context %+v, cache skip %q", settings, f.query.GetHTTPHeader("X-Cache-Skip"))
	}
	var parsed struct {
		Results map[string]struct {
			Status int               `json:"status"`
			Frames []json.RawMessage `json:"frames"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &parsed); err != nil || parsed.Results["A"].Status != 200 || len(parsed.Results["A"].Frames) != 1 {
		t.Errorf("body %s", body)
	}

	// One failed query: 400, every result still there.
	status, body = call(t, f, http.MethodPost, "/api/ds/query", `{"from":"1","to":"2","queries":[
		{"refId":"A","datasource":{"uid":"livesync"}},{"refId":"bad","datasource":{"uid":"livesync"}}]}`, nil)
	if status != http.StatusBadRequest || !strings.Contains(body, `"bad":{"error":"unknown dataset","errorSource":"downstream","status":404}`) || !strings.Contains(body, `"A":{"status":200`) {
		t.Errorf("%d %s", status, body)
	}
	for name, request := range map[string]string{
		"other data source": `{"from":"1","to":"2","queries":[{"refId":"A","datasource":{"uid":"other"}}]}`,
		"relative time":     `{"from":"now-1h","to":"now","queries":[{"refId":"A","datasource":{"uid":"livesync"}}]}`,
		"no queries":        `{"from":"1","to":"2","queries":[]}`,
	} {
		if status, body := call(t, f, http.MethodPost, "/api/ds/query", request, nil); status != http.StatusBadRequest || !strings.Contains(body, `"message"`) {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
}

func TestHealthResourcesAndStreams(t *testing.T) {
	f := &fake{health: backend.HealthStatusOk}
	if status, body := call(t, f, http.MethodGet, "/api/datasources/uid/livesync/health", "", nil); status != 200 ||
		body != `{"details":{"verdict":"warning"},"message":"said by LiveSync","status":"OK"}`+"\n" {
		t.Errorf("health %d %s", status, body)
	}
	f.health = backend.HealthStatusError
	if status, body := call(t, f, http.MethodGet, "/api/datasources/uid/livesync/health", "", nil); status != 400 || !strings.Contains(body, `"status":"ERROR"`) {
		t.Errorf("failing health %d %s", status, body)
	}
	if status, _ := call(t, f, http.MethodGet, "/api/datasources/uid/other/health", "", nil); status != 404 {
		t.Errorf("another uid: %d", status)
	}

	status, body := call(t, f, http.MethodGet, "/api/datasources/uid/livesync/resources/datasets/demo/values/country?q=D&limit=5", "", nil)
	if status != http.StatusTeapot || body != `{"datasets":[]}` || f.resource.Path != "datasets/demo/values/country" ||
		f.resource.URL != "datasets/demo/values/country?q=D&limit=5" || f.resource.Method != http.MethodGet || f.resource.Headers[SettingsHeader] != nil {
		t.Errorf("resource %d %s %+v", status, body, f.resource)
	}

	server := httptest.NewServer(Handler(f))
	defer server.Close()
	req, _ := http.NewRequest(http.MethodGet, server.URL+"/api/live/ds/livesync/demo", nil)
	req.Header.Set(SettingsHeader, EncodeSettings(ds))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Errorf("content type %q", res.Header.Get("Content-Type"))
	}
	var lines []string
	for scanner := bufio.NewScanner(res.Body); scanner.Scan(); {
		if scanner.Text() != "" {
			lines = append(lines, scanner.Text())
		}
	}
	want := []string{`data: {"data":{"values":[["demo"]]}}`, "event: error", `data: {"message":"the service went away"}`}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("stream:\n%s", strings.Join(lines, "\n"))
	}
	f.refuse = true
	if status, _ := call(t, f, http.MethodGet, "/api/live/ds/livesync/nope", "", nil); status != 404 {
		t.Errorf("a refused channel: %d", status)
	}
}
