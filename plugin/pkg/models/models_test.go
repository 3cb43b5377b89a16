package models

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

func TestLoadSettings(t *testing.T) {
	s, err := LoadSettings(backend.DataSourceInstanceSettings{
		JSONData:                json.RawMessage(`{"url":" http://livesync:3001/ ","liveEnabled":false}`),
		DecryptedSecureJSONData: map[string]string{"apiKey": "k"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != "http://livesync:3001" || s.APIKey != "k" || s.Live() || s.Problem() != "" {
		t.Errorf("settings: %+v problem %q", s, s.Problem())
	}
	if _, err := LoadSettings(backend.DataSourceInstanceSettings{JSONData: json.RawMessage(`[`)}); err == nil {
		t.Error("bad jsonData accepted")
	}
	for url, want := range map[string]string{"": "Set the LiveSync URL", "livesync:3001": "is not an http:// or https:// URL", "ftp://x": "is not an http"} {
		if got := (Settings{URL: url}).Problem(); !strings.Contains(got, want) {
			t.Errorf("%q: %q", url, got)
		}
	}
}

// What Grafana's validator asks of a plugin's secrets: never from jsonData, which every viewer of the
// data source can read.
func TestTheAPIKeyComesFromSecureJSONDataOnly(t *testing.T) {
	s, err := LoadSettings(backend.DataSourceInstanceSettings{
		JSONData: json.RawMessage(`{"url":"http://livesync:3001","apiKey":"leaked","token":"leaked"}`),
	})
	if err != nil || s.APIKey != "" {
		t.Errorf("an API key read from jsonData: %q (%v)", s.APIKey, err)
	}
	if encoded, _ := json.Marshal(Settings{URL: "http://x", APIKey: "secret"}); strings.Contains(string(encoded), "secret") {
		t.Errorf("settings serialise the key: %s", encoded)
	}
}

func TestQueryToService(t *testing.T) {
	q, err := ParseQuery(json.RawMessage(`{"refId":"A","dataset":"d","filters":{"a":[],"b":["x"]},"live":false}`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(q.ToService())
	if string(got) != `{"refId":"A","dataset":"d","aggregations":["count"],"filters":{"b":["x"]},"format":"timeseries"}` {
		t.Errorf("metrics: %s", got)
	}
	f, _ := ParseQuery(json.RawMessage(`{"refId":"B","kind":"status","aggregations":["count"]}`))
	got, _ = json.Marshal(f.ToService())
	if string(got) != `{"refId":"B","kind":"status"}` {
		t.Errorf("status: %s", got)
	}
	for model, want := range map[string]string{
		`{"kind":"metrics"}`: "choose a dataset",
		`{"kind":"logs"}`:    `unknown query kind "logs"`,
	} {
		q, _ := ParseQuery(json.RawMessage(model))
		if err := q.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", model, err)
		}
	}
	if q, _ := ParseQuery(json.RawMessage(`{"kind":"annotations"}`)); q.Validate() != nil {
		t.Errorf("an annotations query over every dataset refused: %v", q.Validate())
	}
	if _, err := ParseQuery(json.RawMessage(`{`)); err == nil {
		t.Error("bad model accepted")
	}
}
