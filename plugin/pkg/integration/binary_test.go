// Package integration starts the built backend binary the way Grafana does (hashicorp
// go-plugin, the SDK's handshake, gRPC) against a real LiveSync service started from this
// repository, and checks that its answers are the service's own.
//
// It needs the binary (`go tool mage` in plugin/, or `npm run build`) and the service's build
// (`npx tsc --build` at the repository root); LIVESYNC_PLUGIN_BINARY names another binary.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/livesync/livesync-datasource/pkg/grafanahost"
)

const dataset = "fixed"

// service is a LiveSync process on a free port, with a demo dataset that does not move during the
// test: one new event per 1000 s, no updates or deletes.
type service struct {
	url, apiKey string
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startService(t *testing.T) *service {
	t.Helper()
	main := filepath.Join(repoRoot(t), "backend", "dist", "main.js")
	if _, err := os.Stat(main); err != nil {
		t.Fatalf("the service is not built (%v): run `npx tsc --build` at the repository root", err)
	}
	port := freePort(t)
	apiKey := fmt.Sprintf("key-%d", time.Now().UnixNano())
	config := filepath.Join(t.TempDir(), "livesync.yaml")
	yaml := fmt.Sprintf(`server: { host: 127.0.0.1, port: %d, apiKey: %q }
datasets:
  - name: %s
    source: { kind: demo, rate: 0.001, history: 3h, updateRatio: 0, deleteRatio: 0, seed: 7 }
    dimensions: [country, device]
    metrics: [amount]
    resolution: 1m
    sync: { interval: 1s, lag: 0s, lookback: 0s }
    staleAfter: 10m
`, port, apiKey, dataset)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", main)
	cmd.Env = append(os.Environ(), "LIVESYNC_CONFIG="+config, "LIVESYNC_PREVIEW=off", "LOG_LEVEL=warn", "LOG_FORMAT=json")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", logs.String())
		}
	})
	s := &service{url: fmt.Sprintf("http://127.0.0.1:%d", port), apiKey: apiKey}
	// Ready once the dataset has synced its history.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var health struct {
			Checks struct {
				Datasets map[string]struct{ Status string } `json:"datasets"`
			} `json:"checks"`
		}
		status, body := s.call(t, http.MethodGet, "/api/health", nil)
		if status == http.StatusOK && json.Unmarshal(body, &health) == nil && health.Checks.Datasets[dataset].Status == "ok" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not become ready: %d %s\n%s", status, body, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *service) call(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		encoded, _ := json.Marshal(body)
		reader = bytes.NewReader(encoded)
	}
	req, _ := http.NewRequest(method, s.url+path, reader)
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	payload, _ := io.ReadAll(res.Body)
	return res.StatusCode, payload
}

func binaryPath(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("LIVESYNC_PLUGIN_BINARY"); path != "" {
		return path
	}
	return filepath.Join(repoRoot(t), "plugin", "dist", fmt.Sprintf("gpx_livesync_%s_%s", runtime.GOOS, runtime.GOARCH))
}

// startPlugin starts the backend binary and speaks to it as Grafana's plugin manager does.
func startPlugin(t *testing.T) *grafanahost.Plugin {
	t.Helper()
	p, err := grafanahost.Start(binaryPath(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// pluginContext is what Grafana sends with each call. Grafana's instance manager keeps one
// instance per data source until its settings' Updated time changes, as it does on every save.
func pluginContext(s *service, apiKey string, updated int64) backend.PluginContext {
	jsonData, _ := json.Marshal(map[string]any{"url": s.url, "liveEnabled": true})
	return backend.PluginContext{
		OrgID:    1,
		PluginID: "livesync-datasource",
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: "livesync", Name: "LiveSync", Type: "livesync-datasource",
			JSONData:                jsonData,
			DecryptedSecureJSONData: map[string]string{"apiKey": apiKey},
			Updated:                 time.UnixMilli(updated),
		},
	}
}

func TestBinaryAgainstTheService(t *testing.T) {
	svc := startService(t)
	p := startPlugin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pc := pluginContext(svc, svc.apiKey, 1)

	// An hour that ended a while ago, at 1-minute steps.
	to := time.Now().Truncate(time.Hour).Add(-time.Hour)
	from := to.Add(-time.Hour)
	models := map[string]string{
		"A": `{"dataset":"fixed","aggregations":["count","sum(amount)"],"groupBy":["country"]}`,
		"B": `{"dataset":"fixed","aggregations":["count"],"groupBy":["device"],"filters":{"country":["DE","FR"]},"format":"table"}`,
		"C": `{"kind":"freshness","dataset":"fixed"}`,
		"D": `{"dataset":"nope"}`,
	}
	serviceQueries := map[string]map[string]any{}
	var queries []backend.DataQuery
	for _, ref := range []string{"A", "B", "C", "D"} {
		queries = append(queries, backend.DataQuery{
			RefID: ref, JSON: json.RawMessage(models[ref]),
			TimeRange: backend.TimeRange{From: from, To: to}, Interval: time.Minute, MaxDataPoints: 1000,
		})
		var q map[string]any
		_ = json.Unmarshal([]byte(models[ref]), &q)
		q["refId"] = ref
		if q["kind"] == nil {
			if q["aggregations"] == nil {
				q["aggregations"] = []string{"count"}
			}
			if q["format"] == nil {
				q["format"] = "timeseries"
			}
		}
		serviceQueries[ref] = q
	}
	body := map[string]any{
		"range":      map[string]int64{"from": from.UnixMilli(), "to": to.UnixMilli()},
		"intervalMs": 60000, "maxDataPoints": 1000,
		"queries": []any{serviceQueries["A"], serviceQueries["B"], serviceQueries["C"], serviceQueries["D"]},
	}

	t.Run("QueryData", func(t *testing.T) {
		_, before := svc.call(t, http.MethodPost, "/api/query", body)
		protoRes, err := p.Data.QueryData(ctx, backend.ToProto().QueryDataRequest(&backend.QueryDataRequest{PluginContext: pc, Queries: queries}))
		if err != nil {
			t.Fatal(err)
		}
		_, after := svc.call(t, http.MethodPost, "/api/query", body)
		res, err := backend.FromProto().QueryDataResponse(protoRes)
		if err != nil {
			t.Fatal(err)
		}
		var direct, direct2 struct {
			Results map[string]struct {
				Frames []json.RawMessage `json:"frames"`
				Error  string            `json:"error"`
				Status int               `json:"status"`
			} `json:"results"`
		}
		if err := json.Unmarshal(before, &direct); err != nil {
			t.Fatalf("%v: %s", err, before)
		}
		_ = json.Unmarshal(after, &direct2)
		for _, ref := range []string{"A", "B", "C"} {
			got := res.Responses[ref]
			if got.Error != nil {
				t.Fatalf("%s: %v", ref, got.Error)
			}
			want := direct.Results[ref].Frames
			if len(want) == 0 && ref != "C" {
				t.Fatalf("%s: the service answered no frames; the test needs data", ref)
			}
			if len(got.Frames) != len(want) {
				t.Fatalf("%s: %d frames through the binary, %d from /api/query", ref, len(got.Frames), len(want))
			}
			for i := range want {
				assertSameFrame(t, fmt.Sprintf("%s[%d]", ref, i), got.Frames[i], want[i], direct2.Results[ref].Frames[i])
			}
		}
		d := res.Responses["D"]
		if d.Error == nil || d.Error.Error() != direct.Results["D"].Error || int(d.Status) != direct.Results["D"].Status {
			t.Errorf("D: %v %v, want %q %d", d.Status, d.Error, direct.Results["D"].Error, direct.Results["D"].Status)
		}
		if a := res.Responses["A"].Frames; a[0].Fields[0].Type() != data.FieldTypeTime || a[0].Fields[0].Name != "time" {
			t.Errorf("A's time field: %s %v", a[0].Fields[0].Name, a[0].Fields[0].Type())
		}
	})

	t.Run("QueryData annotations", func(t *testing.T) {
		// The service's start synced the dataset's history in runs of many records: big batches.
		annoFrom, annoTo := time.Now().Add(-3*time.Hour), time.Now().Add(time.Minute)
		_, direct := svc.call(t, http.MethodGet, fmt.Sprintf("/api/annotations?dataset=%s&from=%d&to=%d&limit=1000&minRecords=1",
			dataset, annoFrom.UnixMilli(), annoTo.UnixMilli()), nil)
		var records []struct {
			Time  int64    `json:"time"`
			Title string   `json:"title"`
			Text  string   `json:"text"`
			Tags  []string `json:"tags"`
		}
		if err := json.Unmarshal(direct, &records); err != nil || len(records) == 0 {
			t.Fatalf("the service answered no annotations to compare (%v): %s", err, direct)
		}
		protoRes, err := p.Data.QueryData(ctx, backend.ToProto().QueryDataRequest(&backend.QueryDataRequest{
			PluginContext: pc,
			Queries: []backend.DataQuery{{
				RefID: "Anno", JSON: json.RawMessage(`{"kind":"annotations","dataset":"` + dataset + `","minRecords":1}`),
				TimeRange: backend.TimeRange{From: annoFrom, To: annoTo}, Interval: time.Minute, MaxDataPoints: 1000,
			}},
		}))
		if err != nil {
			t.Fatal(err)
		}
		res, err := backend.FromProto().QueryDataResponse(protoRes)
		if err != nil {
			t.Fatal(err)
		}
		got := res.Responses["Anno"]
		if got.Error != nil || len(got.Frames) != 1 {
			t.Fatalf("annotations: %v, %d frames", got.Error, len(got.Frames))
		}
		frame := got.Frames[0]
		if frame.Rows() != len(records) {
			t.Fatalf("%d annotations through the binary, %d from /api/annotations", frame.Rows(), len(records))
		}
		for i, r := range records {
			var tags []string
			_ = json.Unmarshal(frame.Fields[4].At(i).(json.RawMessage), &tags)
			if at := frame.Fields[0].At(i).(time.Time).UnixMilli(); at != r.Time || frame.Fields[2].At(i) != r.Title ||
				frame.Fields[3].At(i) != r.Text || strings.Join(tags, ",") != strings.Join(r.Tags, ",") {
				t.Errorf("row %d: %d %v %v %v, want %+v", i, at, frame.Fields[2].At(i), frame.Fields[3].At(i), tags, r)
			}
		}
	})

	t.Run("CheckHealth", func(t *testing.T) {
		res, err := p.Diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc)})
		if err != nil {
			t.Fatal(err)
		}
		want := "Connected to LiveSync (store: embedded memory, so its data is lost when the service restarts and is synced again); 1 dataset up to date (fixed)."
		if res.Status != pluginv2.CheckHealthResponse_OK || res.Message != want {
			t.Errorf("got %v %q", res.Status, res.Message)
		}
		wrong := &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pluginContext(svc, "wrong", 2))}
		res, err = p.Diagnostics.CheckHealth(ctx, wrong)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != pluginv2.CheckHealthResponse_ERROR || !strings.HasPrefix(res.Message, "LiveSync rejected the API key (401)") {
			t.Errorf("wrong key: %v %q", res.Status, res.Message)
		}
	})

	t.Run("CallResource", func(t *testing.T) {
		for path, servicePath := range map[string]string{
			"datasets":                      "/api/datasets",
			"datasets/fixed/values/country": "/api/datasets/fixed/values/country?limit=100",
		} {
			stream, err := p.Resource.CallResource(ctx, &pluginv2.CallResourceRequest{
				PluginContext: backend.ToProto().PluginContext(pc), Path: path, Method: http.MethodGet, Url: path + "?limit=100",
			})
			if err != nil {
				t.Fatal(err)
			}
			res, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			status, want := svc.call(t, http.MethodGet, servicePath, nil)
			if int(res.Code) != status || !jsonEqual(res.Body, want) {
				t.Errorf("%s: %d %s\nwant %d %s", path, res.Code, res.Body, status, want)
			}
		}
	})

	t.Run("RunStream", func(t *testing.T) {
		req := &backend.SubscribeStreamRequest{PluginContext: pc, Path: dataset}
		sub, err := p.Stream.SubscribeStream(ctx, backend.ToProto().SubscribeStreamRequest(req))
		if err != nil || sub.Status != pluginv2.SubscribeStreamResponse_OK {
			t.Fatalf("subscribe: %v %v", sub, err)
		}
		streamCtx, stop := context.WithCancel(ctx)
		defer stop()
		run, err := p.Stream.RunStream(streamCtx, backend.ToProto().RunStreamRequest(&backend.RunStreamRequest{PluginContext: pc, Path: dataset}))
		if err != nil {
			t.Fatal(err)
		}
		packet, err := run.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var frame data.Frame
		if err := json.Unmarshal(packet.Data, &frame); err != nil {
			t.Fatal(err)
		}
		if event := frame.Fields[1].At(0).(string); event != "hello" {
			t.Fatalf("first event %q, want hello", event)
		}
		var hello struct {
			Dataset string `json:"dataset"`
			Version float64
		}
		_ = json.Unmarshal([]byte(frame.Fields[5].At(0).(string)), &hello)
		_, info := svc.call(t, http.MethodPost, "/api/query", map[string]any{
			"range": map[string]int64{"from": from.UnixMilli(), "to": to.UnixMilli()}, "intervalMs": 60000, "maxDataPoints": 10,
			"queries": []any{map[string]any{"refId": "A", "dataset": dataset, "aggregations": []string{"count"}}},
		})
		var answer struct {
			Results map[string]struct {
				Frames []struct {
					Schema struct {
						Meta struct {
							Custom struct{ Version float64 } `json:"custom"`
						} `json:"meta"`
					} `json:"schema"`
				} `json:"frames"`
			} `json:"results"`
		}
		_ = json.Unmarshal(info, &answer)
		version := answer.Results["A"].Frames[0].Schema.Meta.Custom.Version
		if hello.Dataset != dataset || hello.Version != version || *frame.Fields[2].At(0).(*float64) != version {
			t.Errorf("hello %+v (row version %v), dataset version %v", hello, frame.Fields[2].At(0), version)
		}
	})
}

// assertSameFrame checks a frame that came through the binary against the service's frame JSON,
// field by field and value by value (times as epoch ms). meta.custom.ageSeconds grows between
// calls: it must lie between the values of the /api/query calls made before and after.
func assertSameFrame(t *testing.T, at string, got *data.Frame, before, after json.RawMessage) {
	t.Helper()
	var want struct {
		Schema struct {
			Name   string          `json:"name"`
			RefID  string          `json:"refId"`
			Meta   json.RawMessage `json:"meta"`
			Fields []struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"fields"`
		} `json:"schema"`
		Data struct {
			Values [][]any `json:"values"`
		} `json:"data"`
	}
	if err := json.Unmarshal(before, &want); err != nil {
		t.Fatal(err)
	}
	if got.Name != want.Schema.Name || got.RefID != want.Schema.RefID || len(got.Fields) != len(want.Schema.Fields) {
		t.Fatalf("%s: frame %q/%s with %d fields, want %q/%s with %d", at, got.Name, got.RefID, len(got.Fields), want.Schema.Name, want.Schema.RefID, len(want.Schema.Fields))
	}
	for i, f := range got.Fields {
		w := want.Schema.Fields[i]
		labels := map[string]string(f.Labels)
		if len(labels) == 0 {
			labels = nil
		}
		if f.Name != w.Name || fmt.Sprint(labels) != fmt.Sprint(w.Labels) {
			t.Errorf("%s: field %d is %q %v, want %q %v", at, i, f.Name, labels, w.Name, w.Labels)
		}
		values := make([]any, f.Len())
		for r := range values {
			values[r] = plain(f.At(r))
		}
		if f.Name == "age_seconds" {
			// Ages grow between calls: between the answers before and after.
			for r, v := range values {
				lo, _ := want.Data.Values[i][r].(float64)
				hi, _ := afterValues(after, i, r).(float64)
				if x, ok := v.(float64); !ok || x < lo || x > hi {
					t.Errorf("%s: age_seconds[%d] = %v, want between %v and %v", at, r, v, lo, hi)
				}
			}
			continue
		}
		if fmt.Sprint(values) != fmt.Sprint(want.Data.Values[i]) {
			t.Errorf("%s: %s values\n got %v\nwant %v", at, f.Name, values, want.Data.Values[i])
		}
	}
	gotMeta := map[string]any{}
	if got.Meta != nil {
		encoded, _ := json.Marshal(got.Meta)
		_ = json.Unmarshal(encoded, &gotMeta)
	}
	wantMeta, afterMeta := map[string]any{}, map[string]any{}
	_ = json.Unmarshal(want.Schema.Meta, &wantMeta)
	var a struct {
		Schema struct {
			Meta json.RawMessage `json:"meta"`
		} `json:"schema"`
	}
	_ = json.Unmarshal(after, &a)
	_ = json.Unmarshal(a.Schema.Meta, &afterMeta)
	// The SDK writes typeVersion into every frame's meta, and leaves out an empty notices list.
	delete(gotMeta, "typeVersion")
	if n, ok := wantMeta["notices"].([]any); ok && len(n) == 0 {
		delete(wantMeta, "notices")
	}
	// What panels need of every frame, the backend adds.
	if pv, ok := gotMeta["preferredVisualisationType"]; ok {
		if pv != "table" {
			t.Errorf("%s: preferredVisualisationType %v", at, pv)
		}
		delete(gotMeta, "preferredVisualisationType")
	}
	age := func(m map[string]any) (float64, bool) {
		custom, _ := m["custom"].(map[string]any)
		v, ok := custom["ageSeconds"].(float64)
		if ok {
			delete(custom, "ageSeconds")
		}
		return v, ok
	}
	gotAge, hasGot := age(gotMeta)
	lo, hasLo := age(wantMeta)
	hi, _ := age(afterMeta)
	if hasGot != hasLo || (hasGot && (gotAge < lo || gotAge > hi)) {
		t.Errorf("%s: ageSeconds %v, want between %v and %v", at, gotAge, lo, hi)
	}
	if !jsonEqualValues(gotMeta, wantMeta) {
		g, _ := json.Marshal(gotMeta)
		w, _ := json.Marshal(wantMeta)
		t.Errorf("%s: meta\n got %s\nwant %s", at, g, w)
	}
}

// afterValues is a value of the frame JSON answered after the binary's.
func afterValues(frame json.RawMessage, field, row int) any {
	var f struct {
		Data struct {
			Values [][]any `json:"values"`
		} `json:"data"`
	}
	_ = json.Unmarshal(frame, &f)
	if field < len(f.Data.Values) && row < len(f.Data.Values[field]) {
		return f.Data.Values[field][row]
	}
	return nil
}

// plain is a field value as JSON has it: times in epoch ms, pointers followed, nil for null.
func plain(v any) any {
	switch x := v.(type) {
	case time.Time:
		return float64(x.UnixMilli())
	case *time.Time:
		if x == nil {
			return nil
		}
		return float64(x.UnixMilli())
	case *float64:
		if x == nil {
			return nil
		}
		return *x
	case *string:
		if x == nil {
			return nil
		}
		return *x
	case *bool:
		if x == nil {
			return nil
		}
		return *x
	}
	return v
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && jsonEqualValues(x, y)
}

func jsonEqualValues(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
