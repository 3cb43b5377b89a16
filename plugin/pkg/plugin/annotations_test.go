package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

const annotationsAnswer = `[
  {"time":1764000000000,"timeEnd":1764000600000,"title":"demo: sync failing","text":"3 failed runs","tags":["sync","failure","demo"]},
  {"time":"2025-11-24T16:10:00.000Z","title":"demo: 5000 records","text":"a big batch","tags":["sync","batch","demo"]},
  {"time":1764000900000,"timeEnd":null,"title":"demo: paused","text":"","tags":["sync","pause","demo","ongoing"]}
]`

func TestQueryDataAnswersAnnotationQueriesFromTheService(t *testing.T) {
	up := newUpstream(t, map[string]http.HandlerFunc{"/api/annotations": answer(200, annotationsAnswer)})
	ds := newTestDatasource(t, up.server.URL, "secret")

	res, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
		dataQuery("Anno", `{"kind":"annotations","dataset":"demo","annotationKinds":["failure","pause"],"minRecords":5000}`),
		dataQuery("All", `{"kind":"annotations","annotationKinds":[]}`),
	}})
	if err != nil {
		t.Fatal(err)
	}

	seen := up.seen()
	if len(seen) != 2 {
		t.Fatalf("want one request per annotations query, got %d", len(seen))
	}
	queries := map[string]url.Values{}
	for _, r := range seen {
		if r.Auth != "Bearer secret" {
			t.Errorf("request without the API key: %q", r.Auth)
		}
		q, _ := url.ParseQuery(r.Query)
		queries[q.Get("dataset")] = q
	}
	want := url.Values{"dataset": {"demo"}, "from": {"1764000000000"}, "to": {"1764003600000"}, "limit": {"1000"}, "kinds": {"failure,pause"}, "minRecords": {"5000"}}
	if got := queries["demo"]; got.Encode() != want.Encode() {
		t.Errorf("query string %s, want %s", got.Encode(), want.Encode())
	}
	// No kinds at all is asked for as such, not left to the service's default.
	if got := queries[""]; !got.Has("kinds") || got.Get("kinds") != "" || got.Has("minRecords") || got.Has("dataset") {
		t.Errorf("every dataset, no kinds: %s", got.Encode())
	}

	r := res.Responses["Anno"]
	if r.Error != nil || len(r.Frames) != 1 {
		t.Fatalf("annotations: %v, %d frames", r.Error, len(r.Frames))
	}
	frame := r.Frames[0]
	if frame.Name != AnnotationsFrameName || frame.RefID != "Anno" || frame.Rows() != 3 {
		t.Fatalf("frame %q refId %q with %d rows", frame.Name, frame.RefID, frame.Rows())
	}
	type row struct {
		Time, TimeEnd int64
		Title, Text   string
		Tags          []string
		Color         *string
	}
	var rows []row
	for i := 0; i < frame.Rows(); i++ {
		var tags []string
		_ = json.Unmarshal(frame.Fields[4].At(i).(json.RawMessage), &tags)
		rows = append(rows, row{
			Time:    frame.Fields[0].At(i).(time.Time).UnixMilli(),
			TimeEnd: frame.Fields[1].At(i).(time.Time).UnixMilli(),
			Title:   frame.Fields[2].At(i).(string),
			Text:    frame.Fields[3].At(i).(string),
			Tags:    tags,
			Color:   frame.Fields[5].At(i).(*string),
		})
	}
	names := []string{}
	for _, f := range frame.Fields {
		names = append(names, f.Name)
	}
	if got, _ := json.Marshal(names); string(got) != `["time","timeEnd","title","text","tags","color"]` {
		t.Errorf("fields %s", got)
	}
	red, grey := "#F2495C", "#8E8E8E"
	wantRows := []row{
		{1764000000000, 1764000600000, "demo: sync failing", "3 failed runs", []string{"sync", "failure", "demo"}, &red},
		// An ISO time, no end: a point, no region colour.
		{1764000600000, 1764000600000, "demo: 5000 records", "a big batch", []string{"sync", "batch", "demo"}, nil},
		{1764000900000, 1764000900000, "demo: paused", "", []string{"sync", "pause", "demo", "ongoing"}, &grey},
	}
	gotJSON, _ := json.Marshal(rows)
	wantJSON, _ := json.Marshal(wantRows)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("rows\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestAnnotationQueriesKeepTheServiceErrorsInWords(t *testing.T) {
	up := newUpstream(t, map[string]http.HandlerFunc{
		"/api/annotations": answer(400, `{"message":"kinds: \"nope\" is not a kind of annotation; use failure, resync, pause"}`),
	})
	ds := newTestDatasource(t, up.server.URL, "secret")
	res, _ := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
		dataQuery("Anno", `{"kind":"annotations","annotationKinds":["nope"]}`),
	}})
	r := res.Responses["Anno"]
	if r.Error == nil || r.Status != backend.StatusBadRequest {
		t.Fatalf("want a 400 error, got %v (%d)", r.Error, r.Status)
	}
	if want := `kinds: "nope" is not a kind of annotation`; !strings.Contains(r.Error.Error(), want) {
		t.Errorf("error %q does not say %q", r.Error, want)
	}

	bad := newUpstream(t, map[string]http.HandlerFunc{"/api/annotations": answer(200, `[{"title":"no time"}]`)})
	res, _ = newTestDatasource(t, bad.server.URL, "").QueryData(context.Background(), &backend.QueryDataRequest{
		Queries: []backend.DataQuery{dataQuery("Anno", `{"kind":"annotations"}`)},
	})
	if r := res.Responses["Anno"]; r.Error == nil || !strings.Contains(r.Error.Error(), "annotation without a valid time") {
		t.Errorf("a record without a time: %v", r.Error)
	}
}
