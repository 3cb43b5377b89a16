package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// datasetName is the service's rule for dataset names; dimension names are checked the same way
// so a resource path can never climb out of /api/datasets.
var datasetName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// CallResource serves what the editors need, read-only, from the service:
//
//	GET datasets                             → /api/datasets
//	GET datasets/<name>                      → /api/datasets/<name>
//	GET datasets/<name>/values/<dimension>   → /api/datasets/<name>/values/<dimension>?q=&limit=
//
// Annotations are queries (QueryData, kind annotations), not resources.
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	if req.Method != http.MethodGet {
		return sendJSON(sender, http.StatusMethodNotAllowed, messageBody("LiveSync resources are read-only: use GET"))
	}
	target, ok := resourceTarget(req.Path, req.URL)
	if !ok {
		return sendJSON(sender, http.StatusNotFound, messageBody("no such LiveSync resource: "+req.Path))
	}
	if problem := d.settings.Problem(); problem != "" {
		return sendJSON(sender, http.StatusBadRequest, messageBody(problem))
	}
	payload, status, err := d.client.do(ctx, http.MethodGet, target, nil, nil)
	var apiErr *apiError
	if err != nil && !errors.As(err, &apiErr) {
		return sendJSON(sender, http.StatusBadGateway, messageBody(err.Error()))
	}
	if apiErr != nil {
		return sendJSON(sender, apiErr.Status, messageBody(apiErr.Error()))
	}
	return sendJSON(sender, status, string(payload))
}

// resourceTarget maps a resource path and its query string to the service's path.
func resourceTarget(path, rawURL string) (string, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	query := url.Values{}
	if u, err := url.Parse(rawURL); err == nil {
		query = u.Query()
	}
	keep := func(names ...string) string {
		out := url.Values{}
		for _, name := range names {
			if v := query.Get(name); v != "" {
				out.Set(name, v)
			}
		}
		if len(out) == 0 {
			return ""
		}
		return "?" + out.Encode()
	}
	switch {
	case len(parts) == 1 && parts[0] == "datasets":
		return "/api/datasets", true
	case len(parts) == 2 && parts[0] == "datasets" && datasetName.MatchString(parts[1]):
		return "/api/datasets/" + parts[1], true
	case len(parts) == 4 && parts[0] == "datasets" && parts[2] == "values" &&
		datasetName.MatchString(parts[1]) && datasetName.MatchString(parts[3]):
		return "/api/datasets/" + parts[1] + "/values/" + parts[3] + keep("q", "limit"), true
	}
	return "", false
}

func sendJSON(sender backend.CallResourceResponseSender, status int, body string) error {
	return sender.Send(&backend.CallResourceResponse{
		Status:  status,
		Headers: map[string][]string{"Content-Type": {"application/json"}},
		Body:    []byte(body),
	})
}

// messageBody is the JSON error body the frontend reads (`{"message": ...}`).
func messageBody(message string) string {
	body, _ := json.Marshal(map[string]string{"message": message})
	return string(body)
}
