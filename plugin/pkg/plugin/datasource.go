// Package plugin is the LiveSync data source's backend: the instance Grafana keeps per data
// source, and its query, health, resource and stream handlers.
package plugin

import (
	"context"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"

	"github.com/livesync/livesync-datasource/pkg/models"
)

// Make sure Datasource implements what Grafana calls.
var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ backend.StreamHandler         = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// Datasource is one LiveSync data source: its settings, parsed once, and its HTTP client.
// Grafana makes a new one when the settings change and disposes of the old one.
type Datasource struct {
	settings models.Settings
	client   *client
	uid      string
}

// NewDatasource is the instance factory Grafana calls with a data source's settings.
func NewDatasource(_ context.Context, source backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	settings, err := models.LoadSettings(source)
	if err != nil {
		return nil, err
	}
	return &Datasource{settings: settings, client: newClient(settings.URL, settings.APIKey), uid: source.UID}, nil
}

// Dispose closes the instance's idle connections; streams end with their contexts.
func (d *Datasource) Dispose() {
	d.client.close()
}
