package plugin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// upstream is a fake LiveSync service: each test names the answers by path and sees every request.
type upstream struct {
	t        *testing.T
	server   *httptest.Server
	mu       sync.Mutex
	requests []recorded
	handlers map[string]http.HandlerFunc
}

type recorded struct {
	Method, Path, Query, Auth, CacheSkip string
	Body                                 []byte
}

func newUpstream(t *testing.T, handlers map[string]http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{t: t, handlers: handlers}
	u.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.requests = append(u.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("X-Cache-Skip"), body})
		u.mu.Unlock()
		h, ok := handlers[r.URL.Path]
		if !ok {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h(w, r)
	}))
	t.Cleanup(u.server.Close)
	return u
}

func (u *upstream) seen() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.requests...)
}

func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func newTestDatasource(t *testing.T, url, apiKey string) *Datasource {
	t.Helper()
	jsonData, _ := json.Marshal(map[string]any{"url": url})
	instance, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{
		UID:                     "livesync",
		JSONData:                jsonData,
		DecryptedSecureJSONData: map[string]string{"apiKey": apiKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	ds := instance.(*Datasource)
	t.Cleanup(ds.Dispose)
	return ds
}

var (
	t0 = time.UnixMilli(1_764_000_000_000).UTC()
	t1 = t0.Add(time.Hour)
)

func dataQuery(refID, model string) backend.DataQuery {
	return backend.DataQuery{
		RefID:         refID,
		JSON:          json.RawMessage(model),
		TimeRange:     backend.TimeRange{From: t0, To: t1},
		Interval:      time.Minute,
		MaxDataPoints: 100,
	}
}

const metricsAnswer = `{"results":{
  "A":{"frames":[{"schema":{"refId":"A","fields":[
      {"name":"time","type":"time","typeInfo":{"frame":"time.Time"}},
      {"name":"sum(amount)","type":"number","typeInfo":{"frame":"float64","nullable":true},"labels":{"country":"DE"}}],
    "meta":{"custom":{"lastSyncAt":1764000360000,"ageSeconds":4.5,"state":"idle","stepMs":60000,"version":7},
            "notices":[{"severity":"warning","text":"demo: last synced 7 min ago; threshold 2 min"}]}},
    "data":{"values":[[1764000000000,1764000060000],[12.5,null]]}}]},
  "B":{"frames":[{"schema":{"refId":"B","name":"freshness","fields":[
      {"name":"dataset","type":"string"},{"name":"last_updated","type":"time"},
      {"name":"age_seconds","type":"number"},{"name":"stale","type":"boolean"}]},
    "data":{"values":[["demo","empty"],[1764000360000,null],[4.5,null],[false,true]]}}]},
  "C":{"error":"queries[2].dataset: unknown dataset \"nope\"","status":404}}}`

func TestQueryDataConvertsFramesAndKeepsErrorsPerQuery(t *testing.T) {
	up := newUpstream(t, map[string]http.HandlerFunc{"/api/query": answer(200, metricsAnswer)})
	ds := newTestDatasource(t, up.server.URL+"/", "secret")

	req := &backend.QueryDataRequest{
		Queries: []backend.DataQuery{
			dataQuery("A", `{"dataset":"demo","aggregations":["sum(amount)"],"groupBy":["country"],"filters":{"device":["mobile"],"page":[]}}`),
			dataQuery("B", `{"kind":"freshness"}`),
			dataQuery("C", `{"dataset":"nope"}`),
			dataQuery("D", `{"kind":"metrics"}`),
		},
		Headers: map[string]string{"http_X-Cache-Skip": "true"},
	}
	res, err := ds.QueryData(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}

	// One request for the three answerable queries, with the key and the cache skip.
	seen := up.seen()
	if len(seen) != 1 {
		t.Fatalf("want 1 request, got %d", len(seen))
	}
	if seen[0].Auth != "Bearer secret" || seen[0].CacheSkip != "true" {
		t.Errorf("auth %q, cache skip %q", seen[0].Auth, seen[0].CacheSkip)
	}
	var body map[string]any
	_ = json.Unmarshal(seen[0].Body, &body)
	wantBody := `{"intervalMs":60000,"maxDataPoints":100,"queries":[` +
		`{"aggregations":["sum(amount)"],"dataset":"demo","filters":{"device":["mobile"]},"format":"timeseries","groupBy":["country"],"refId":"A"},` +
		`{"kind":"freshness","refId":"B"},` +
		`{"aggregations":["count"],"dataset":"nope","format":"timeseries","refId":"C"}],` +
		`"range":{"from":1764000000000,"to":1764003600000}}`
	if got, _ := json.Marshal(body); string(got) != wantBody {
		t.Errorf("body\n got %s\nwant %s", got, wantBody)
	}

	a := res.Responses["A"]
	if a.Error != nil || len(a.Frames) != 1 {
		t.Fatalf("A: %v, %d frames", a.Error, len(a.Frames))
	}
	frame := a.Frames[0]
	if frame.RefID != "A" || frame.Fields[0].Type() != data.FieldTypeTime || frame.Fields[1].Type() != data.FieldTypeNullableFloat64 {
		t.Errorf("A schema: %s %v %v", frame.RefID, frame.Fields[0].Type(), frame.Fields[1].Type())
	}
	if frame.Fields[1].Name != "sum(amount)" || frame.Fields[1].Labels.String() != "country=DE" {
		t.Errorf("A field: %q %v", frame.Fields[1].Name, frame.Fields[1].Labels)
	}
	if got := frame.Fields[0].At(1).(time.Time); !got.Equal(time.UnixMilli(1764000060000)) {
		t.Errorf("time[1] = %v", got)
	}
	if v := frame.Fields[1].At(0).(*float64); v == nil || *v != 12.5 {
		t.Errorf("value[0] = %v", v)
	}
	if v := frame.Fields[1].At(1).(*float64); v != nil {
		t.Errorf("value[1] = %v, want null", *v)
	}
	custom := frame.Meta.Custom.(map[string]any)
	if custom["lastSyncAt"] != float64(1764000360000) || custom["version"] != float64(7) {
		t.Errorf("meta.custom = %v", custom)
	}
	if len(frame.Meta.Notices) != 1 || frame.Meta.Notices[0].Severity != data.NoticeSeverityWarning ||
		frame.Meta.Notices[0].Text != "demo: last synced 7 min ago; threshold 2 min" {
		t.Errorf("notices = %+v", frame.Meta.Notices)
	}

	b := res.Responses["B"].Frames[0]
	if b.Name != "freshness" || b.Fields[1].Type() != data.FieldTypeNullableTime || b.Fields[0].Type() != data.FieldTypeString ||
		b.Fields[3].Type() != data.FieldTypeBool {
		t.Errorf("B types: %v %v %v", b.Fields[0].Type(), b.Fields[1].Type(), b.Fields[3].Type())
	}
	if b.Fields[2].Config == nil || b.Fields[2].Config.Unit != "s" {
		t.Errorf("age_seconds unit: %+v", b.Fields[2].Config)
	}

	c := res.Responses["C"]
	if c.Error == nil || c.Status != backend.StatusNotFound || !strings.Contains(c.Error.Error(), `unknown dataset "nope"`) {
		t.Errorf("C: %v %v", c.Status, c.Error)
	}
	d := res.Responses["D"]
	if d.Error == nil || d.Error.Error() != "choose a dataset" || d.Status != backend.StatusBadRequest {
		t.Errorf("D: %v %v", d.Status, d.Error)
	}
}

func TestQueryDataTableFormatPrefersTable(t *testing.T) {
	up := newUpstream(t, map[string]http.HandlerFunc{"/api/query": answer(200, `{"results":{"A":{"frames":[{"schema":{"refId":"A","fields":[
		{"name":"time","type":"time","typeInfo":{"frame":"time.Time"}},{"name":"country","type":"string","typeInfo":{"frame":"string","nullable":true}}]},
		"data":{"values":[[1764000000000],["DE"]]}}]}}}`)})
	ds := newTestDatasource(t, up.server.URL, "")
	res, _ := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
		dataQuery("A", `{"dataset":"demo","format":"table"}`),
	}})
	frame := res.Responses["A"].Frames[0]
	if frame.Meta == nil || frame.Meta.PreferredVisualization != data.VisTypeTable {
		t.Errorf("meta = %+v", frame.Meta)
	}
	if frame.Fields[1].Type() != data.FieldTypeNullableString {
		t.Errorf("country type = %v", frame.Fields[1].Type())
	}
	if up.seen()[0].Auth != "" {
		t.Errorf("no key configured, but sent %q", up.seen()[0].Auth)
	}
}

func TestQueryDataGroupsByRangeAndWordsFailures(t *testing.T) {
	up := newUpstream(t, map[string]http.HandlerFunc{"/api/query": answer(401, `{"error":"Unauthorized","message":"missing or wrong API key"}`)})
	ds := newTestDatasource(t, up.server.URL, "wrong")
	other := dataQuery("B", `{"dataset":"demo"}`)
	other.TimeRange.From = t0.Add(-time.Hour)
	res, _ := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
		dataQuery("A", `{"dataset":"demo"}`), other,
	}})
	if n := len(up.seen()); n != 2 {
		t.Errorf("want one request per time range, got %d", n)
	}
	for _, ref := range []string{"A", "B"} {
		r := res.Responses[ref]
		want := "LiveSync rejected the API key (401): missing or wrong API key. Check the API key in the data source settings."
		if r.Error == nil || r.Error.Error() != want || r.Status != backend.StatusUnauthorized {
			t.Errorf("%s: %v %v", ref, r.Status, r.Error)
		}
	}
}

func TestQueryDataEveryQueryFailedKeepsEachError(t *testing.T) {
	up := newUpstream(t, map[string]http.HandlerFunc{"/api/query": answer(404, `{"error":"Not Found","message":"unknown dataset","results":{"A":{"error":"unknown dataset \"x\"","status":404}}}`)})
	ds := newTestDatasource(t, up.server.URL, "")
	res, _ := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{dataQuery("A", `{"dataset":"x"}`)}})
	if r := res.Responses["A"]; r.Error == nil || r.Error.Error() != `unknown dataset "x"` || r.Status != backend.StatusNotFound {
		t.Errorf("A: %v %v", r.Status, r.Error)
	}
}

func TestUnreachableAndMissingURL(t *testing.T) {
	up := newUpstream(t, map[string]http.HandlerFunc{})
	url := up.server.URL
	up.server.Close()
	ds := newTestDatasource(t, url, "")
	res, _ := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{dataQuery("A", `{"dataset":"demo"}`)}})
	if r := res.Responses["A"]; r.Error == nil || !strings.HasPrefix(r.Error.Error(), "Could not reach LiveSync at "+url) {
		t.Errorf("A: %v", r.Error)
	}
	health, _ := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if health.Status != backend.HealthStatusError || !strings.HasPrefix(health.Message, "Could not reach LiveSync at "+url) {
		t.Errorf("health: %v %q", health.Status, health.Message)
	}

	empty := newTestDatasource(t, "", "")
	health, _ = empty.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if health.Status != backend.HealthStatusError || !strings.HasPrefix(health.Message, "Set the LiveSync URL") {
		t.Errorf("no URL: %v %q", health.Status, health.Message)
	}
	res, _ = empty.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{dataQuery("A", `{"dataset":"demo"}`)}})
	if r := res.Responses["A"]; r.Error == nil || !strings.HasPrefix(r.Error.Error(), "Set the LiveSync URL") {
		t.Errorf("no URL query: %v", r.Error)
	}
}

func TestCheckHealthInWords(t *testing.T) {
	cases := []struct {
		name, body, verdict, message string
		status                       int
		want                         backend.HealthStatus
	}{
		{
			"fresh, in memory", `{"status":"ok","checks":{"store":{"kind":"memory","status":"ok"},"datasets":{"demo":{"status":"ok","ageSeconds":3}}}}`,
			"success", "Connected to LiveSync (store: embedded memory, so its data is lost when the service restarts and is synced again); 1 dataset up to date (demo).",
			200, backend.HealthStatusOk,
		},
		{
			"stale", `{"status":"degraded","checks":{"store":{"kind":"redis","status":"ok","url":"redis://r:6379/0"},"datasets":{"events":{"status":"stale","ageSeconds":452,"message":"last error: timeout"},"demo":{"status":"ok","ageSeconds":1}}}}`,
			"warning", "Connected to LiveSync (store: Redis at redis://r:6379/0, reachable), but 1 dataset needs attention: events is stale (last synced 7m ago): last error: timeout.",
			200, backend.HealthStatusOk,
		},
		{
			"store down", `{"status":"down","checks":{"store":{"kind":"redis","status":"down","message":"connection refused"},"datasets":{}}}`,
			"error", "LiveSync is reachable but its store is down: connection refused. Panels cannot load until it is back.",
			503, backend.HealthStatusError,
		},
		{
			"wrong key", `{"error":"Unauthorized","message":"missing or wrong API key"}`,
			"error", "LiveSync rejected the API key (401): missing or wrong API key. Check the API key in the data source settings.",
			401, backend.HealthStatusError,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t, map[string]http.HandlerFunc{"/api/health": answer(c.status, c.body)})
			ds := newTestDatasource(t, up.server.URL, "k")
			res, err := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var verdict Verdict
			_ = json.Unmarshal(res.JSONDetails, &verdict)
			if res.Status != c.want || res.Message != c.message || verdict.Verdict != c.verdict {
				t.Errorf("got %v %q %q\nwant %v %q %q", res.Status, verdict.Verdict, res.Message, c.want, c.verdict, c.message)
			}
		})
	}
}

// resourceSender collects CallResource's answer.
type resourceSender struct{ res *backend.CallResourceResponse }

func (s *resourceSender) Send(res *backend.CallResourceResponse) error { s.res = res; return nil }

func TestCallResource(t *testing.T) {
	up := newUpstream(t, map[string]http.HandlerFunc{
		"/api/datasets":                     answer(200, `{"datasets":[{"name":"demo"}]}`),
		"/api/datasets/demo/values/country": answer(200, `{"values":["DE","FR"]}`),
		"/api/datasets/gone":                answer(404, `{"error":"Not Found","message":"unknown dataset \"gone\""}`),
	})
	ds := newTestDatasource(t, up.server.URL, "k")
	call := func(method, path, url string) *backend.CallResourceResponse {
		s := &resourceSender{}
		if err := ds.CallResource(context.Background(), &backend.CallResourceRequest{Method: method, Path: path, URL: url}, s); err != nil {
			t.Fatal(err)
		}
		return s.res
	}
	if r := call("GET", "datasets", "datasets"); r.Status != 200 || string(r.Body) != `{"datasets":[{"name":"demo"}]}` {
		t.Errorf("datasets: %d %s", r.Status, r.Body)
	}
	if r := call("GET", "datasets/demo/values/country", "datasets/demo/values/country?q=D&limit=5&other=x"); r.Status != 200 || string(r.Body) != `{"values":["DE","FR"]}` {
		t.Errorf("values: %d %s", r.Status, r.Body)
	}
	if r := call("GET", "datasets/gone", "datasets/gone"); r.Status != 404 || !strings.Contains(string(r.Body), "has no /api/datasets/gone (404)") {
		t.Errorf("gone: %d %s", r.Status, r.Body)
	}
	if r := call("GET", "datasets/../metrics", ""); r.Status != 404 {
		t.Errorf("climbing out: %d", r.Status)
	}
	if r := call("POST", "datasets", ""); r.Status != 405 {
		t.Errorf("POST: %d", r.Status)
	}
	seen := up.seen()
	if len(seen) != 3 || seen[1].Query != "limit=5&q=D" || seen[1].Auth != "Bearer k" {
		t.Errorf("requests: %+v", seen)
	}
}

// packets collects what RunStream sends, and ends the stream after `stopAfter` packets.
type packets struct {
	mu        sync.Mutex
	got       []json.RawMessage
	stopAfter int
	cancel    context.CancelFunc
}

func (p *packets) Send(packet *backend.StreamPacket) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, packet.Data)
	if len(p.got) == p.stopAfter {
		p.cancel()
	}
	return nil
}

func TestRunStreamFollowsServerSentEventsAndReconnects(t *testing.T) {
	var connections int
	var mu sync.Mutex
	up := newUpstream(t, map[string]http.HandlerFunc{
		"/api/datasets/demo/events": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			connections++
			n := connections
			mu.Unlock()
			if r.Header.Get("Accept") != "text/event-stream" {
				t.Errorf("accept: %q", r.Header.Get("Accept"))
			}
			w.Header().Set("Content-Type", "text/event-stream")
			// A short retry, so the test reconnects at once; then a whole session, then the end.
			_, _ = io.WriteString(w, "retry: 1\n\n")
			_, _ = io.WriteString(w, `event: hello`+"\n"+`data: {"dataset":"demo","version":`+map[int]string{1: "3", 2: "5"}[n]+`}`+"\n\n")
			if n == 1 {
				_, _ = io.WriteString(w, ": heartbeat\n\n")
				_, _ = io.WriteString(w, "id: 4\nevent: change\ndata: {\"dataset\":\"demo\",\"version\":4,\"from\":1764000000000,\"to\":1764000060000}\n\n")
			}
		},
	})
	ds := newTestDatasource(t, up.server.URL, "k")
	now = func() time.Time { return t0 }
	t.Cleanup(func() { now = time.Now })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &packets{stopAfter: 4, cancel: cancel}
	if err := ds.RunStream(ctx, &backend.RunStreamRequest{Path: "demo"}, backend.NewStreamSender(p)); err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, raw := range p.got {
		var frame data.Frame
		if err := json.Unmarshal(raw, &frame); err != nil {
			t.Fatal(err)
		}
		event := frame.Fields[1].At(0).(string)
		version := frame.Fields[2].At(0).(*float64)
		v := "-"
		if version != nil {
			v = strings.TrimSuffix(strings.TrimSuffix(json.Number(mustJSON(*version)).String(), ".0"), "")
		}
		events = append(events, event+"@"+v)
		if got := frame.Fields[0].At(0).(time.Time); !got.Equal(t0) {
			t.Errorf("time = %v", got)
		}
	}
	want := "hello@3 change@4 trouble@- hello@5"
	if strings.Join(events, " ") != want {
		t.Errorf("events %q, want %q", strings.Join(events, " "), want)
	}
}

func TestSubscribeStream(t *testing.T) {
	up := newUpstream(t, map[string]http.HandlerFunc{
		"/api/datasets/demo": answer(200, `{"name":"demo"}`),
		"/api/datasets/gone": answer(404, `{"message":"unknown dataset"}`),
	})
	ds := newTestDatasource(t, up.server.URL, "k")
	for path, want := range map[string]backend.SubscribeStreamStatus{
		"demo": backend.SubscribeStreamStatusOK, "gone": backend.SubscribeStreamStatusNotFound, "../x": backend.SubscribeStreamStatusNotFound,
	} {
		res, _ := ds.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: path})
		if res.Status != want {
			t.Errorf("%s: %v, want %v", path, res.Status, want)
		}
	}
	res, _ := ds.PublishStream(context.Background(), &backend.PublishStreamRequest{Path: "demo"})
	if res.Status != backend.PublishStreamStatusPermissionDenied {
		t.Errorf("publish: %v", res.Status)
	}
}
