// Package models holds what Grafana hands the backend as JSON: the data source's settings and
// the queries' models.
package models

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Settings is the data source's configuration: jsonData plus the decrypted API key. jsonData is
// visible to every viewer of the data source, so the key is read from secureJsonData only.
type Settings struct {
	// URL is the service's root as Grafana's server reaches it.
	URL string `json:"url"`
	// LiveEnabled turns live updates off for every query of the data source when false.
	LiveEnabled *bool `json:"liveEnabled"`

	// APIKey comes from secureJsonData.apiKey; it is never serialised back.
	APIKey string `json:"-"`
}

// LoadSettings reads jsonData and secureJsonData. A bad jsonData is an error; a missing or bad URL
// is not (see Problem): the data source must still answer "Save & test" with what to fix.
func LoadSettings(source backend.DataSourceInstanceSettings) (Settings, error) {
	var s Settings
	if len(source.JSONData) > 0 {
		if err := json.Unmarshal(source.JSONData, &s); err != nil {
			return Settings{}, fmt.Errorf("jsonData: %w", err)
		}
	}
	s.URL = strings.TrimRight(strings.TrimSpace(s.URL), "/")
	s.APIKey = source.DecryptedSecureJSONData["apiKey"]
	return s, nil
}

// Problem says what is wrong with the URL, in words, or "" when it can be used.
func (s Settings) Problem() string {
	if s.URL == "" {
		return "Set the LiveSync URL (the service's root, as Grafana's server reaches it), then save & test again."
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("The LiveSync URL %q is not an http:// or https:// URL: set the service's root, such as http://livesync:3001.", s.URL)
	}
	return ""
}

// Live says whether live updates are allowed at all (unset means on).
func (s Settings) Live() bool { return s.LiveEnabled == nil || *s.LiveEnabled }
