// Command grafana-host is the preview's Grafana server, as far as a backend data source meets it:
// it starts the plugin's built binary over Grafana's plugin protocol (package grafanahost) and
// serves Grafana's /api/ds/query, the data source's health and resources, and its ds/ Live
// streams over HTTP on a loopback port. It prints `{"url": "http://127.0.0.1:<port>"}` once it
// listens and exits when its standard input closes, so it never outlives the process that
// started it.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/livesync/livesync-datasource/pkg/grafanahost"
)

func main() {
	binary := flag.String("binary", "", "the plugin's backend binary (dist/gpx_…)")
	listen := flag.String("listen", "127.0.0.1:0", "the address to serve Grafana's API on")
	flag.Parse()
	if *binary == "" {
		log.Fatal("grafana-host: -binary is required")
	}
	p, err := grafanahost.Start(*binary)
	if err != nil {
		log.Fatalf("grafana-host: %v", err)
	}
	defer p.Kill()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		p.Kill()
		log.Fatalf("grafana-host: %v", err)
	}
	server := &http.Server{Handler: grafanahost.Handler(p), ReadHeaderTimeout: 10 * time.Second}
	ready, _ := json.Marshal(map[string]string{"url": "http://" + l.Addr().String()})
	fmt.Println(string(ready))
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = server.Close()
	}()
	if err := server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		p.Kill()
		log.Fatalf("grafana-host: %v", err)
	}
}
