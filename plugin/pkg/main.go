// Command gpx_livesync is the LiveSync data source's backend: Grafana starts it and talks to it
// over the go-plugin gRPC protocol.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/livesync/livesync-datasource/pkg/plugin"
)

func main() {
	if err := datasource.Manage("livesync-datasource", plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error(err.Error())
		os.Exit(1)
	}
}
