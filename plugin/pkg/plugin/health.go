package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// healthResponse is GET /api/health's body.
type healthResponse struct {
	Status string `json:"status"`
	Checks struct {
		Store *struct {
			Kind    string `json:"kind"`
			Status  string `json:"status"`
			URL     string `json:"url"`
			Message string `json:"message"`
		} `json:"store"`
		Datasets map[string]datasetHealth `json:"datasets"`
	} `json:"checks"`
}

type datasetHealth struct {
	Status     string   `json:"status"`
	AgeSeconds *float64 `json:"ageSeconds"`
	Message    string   `json:"message"`
}

// Verdict is CheckHealth's JSONDetails: Grafana has no "warning" health status, so the
// frontend reads this to show a warning, as "Save & test" did before the backend.
type Verdict struct {
	Verdict string `json:"verdict"`
}

// CheckHealth is "Save & test": what works and what does not, in words; the frontend shows it as is.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	if problem := d.settings.Problem(); problem != "" {
		return healthResult(backend.HealthStatusError, "error", problem), nil
	}
	payload, _, err := d.client.do(ctx, http.MethodGet, "/api/health", nil, nil)
	var apiErr *apiError
	if err != nil {
		// 503 with checks is the service reporting its store down, not an unreachable service.
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable {
			var health healthResponse
			if json.Unmarshal(apiErr.Body, &health) == nil && (health.Checks.Store != nil || health.Status == "down") {
				status, verdict, message := describeHealth(health)
				return healthResult(status, verdict, message), nil
			}
		}
		backend.Logger.FromContext(ctx).Warn("LiveSync health check failed", "error", err)
		return healthResult(backend.HealthStatusError, "error", err.Error()), nil
	}
	var health healthResponse
	if err := json.Unmarshal(payload, &health); err != nil {
		return healthResult(backend.HealthStatusError, "error",
			fmt.Sprintf("%s answered /api/health with something that is not LiveSync's health: is the URL the service's root?", d.settings.URL)), nil
	}
	status, verdict, message := describeHealth(health)
	return healthResult(status, verdict, message), nil
}

func healthResult(status backend.HealthStatus, verdict, message string) *backend.CheckHealthResult {
	details, _ := json.Marshal(Verdict{Verdict: verdict})
	return &backend.CheckHealthResult{Status: status, Message: message, JSONDetails: details}
}

// FormatAge is seconds as a person says them: 45s, 12m, 3h 5m, 2d 4h.
func FormatAge(seconds *float64) string {
	if seconds == nil || math.IsNaN(*seconds) || math.IsInf(*seconds, 0) {
		return "never"
	}
	s := int64(math.Max(0, math.Round(*seconds)))
	if s < 60 {
		return fmt.Sprintf("%ds", s)
	}
	m := s / 60
	if m < 60 {
		return fmt.Sprintf("%dm", m)
	}
	h := m / 60
	if h < 24 {
		if m%60 != 0 {
			return fmt.Sprintf("%dh %dm", h, m%60)
		}
		return fmt.Sprintf("%dh", h)
	}
	days := h / 24
	if h%24 != 0 {
		return fmt.Sprintf("%dd %dh", days, h%24)
	}
	return fmt.Sprintf("%dd", days)
}

func describeDataset(name string, h datasetHealth) string {
	because := ""
	if h.Message != "" {
		because = ": " + h.Message
	}
	switch h.Status {
	case "stale":
		if h.AgeSeconds == nil {
			return fmt.Sprintf("%s is stale (never synced)%s", name, because)
		}
		return fmt.Sprintf("%s is stale (last synced %s ago)%s", name, FormatAge(h.AgeSeconds), because)
	case "failing":
		return fmt.Sprintf("%s is failing%s", name, because)
	default:
		return fmt.Sprintf("%s is %s%s", name, h.Status, because)
	}
}

func describeStore(health healthResponse) string {
	store := health.Checks.Store
	if store == nil {
		return "store: unknown"
	}
	if store.Kind == "memory" {
		return "store: embedded memory, so its data is lost when the service restarts and is synced again"
	}
	if store.URL != "" {
		return fmt.Sprintf("store: Redis at %s, reachable", store.URL)
	}
	return "store: Redis, reachable"
}

// describeHealth words the service's health for "Save & test".
func describeHealth(health healthResponse) (backend.HealthStatus, string, string) {
	store := health.Checks.Store
	if health.Status == "down" || (store != nil && store.Status == "down") {
		message := "no answer"
		if store != nil && store.Message != "" {
			message = store.Message
		}
		return backend.HealthStatusError, "error",
			fmt.Sprintf("LiveSync is reachable but its store is down: %s. Panels cannot load until it is back.", message)
	}
	// The service lists datasets in its configuration's order; JSON objects keep it, Go maps do not.
	names := make([]string, 0, len(health.Checks.Datasets))
	for name := range health.Checks.Datasets {
		names = append(names, name)
	}
	sort.Strings(names)
	connected := fmt.Sprintf("Connected to LiveSync (%s)", describeStore(health))
	var troubled, fresh, busy []string
	for _, name := range names {
		h := health.Checks.Datasets[name]
		switch h.Status {
		case "stale", "failing":
			troubled = append(troubled, describeDataset(name, h))
		case "ok":
			fresh = append(fresh, name)
		default:
			busy = append(busy, describeDataset(name, h))
		}
	}
	if len(troubled) > 0 {
		noun := "datasets need"
		if len(troubled) == 1 {
			noun = "dataset needs"
		}
		return backend.HealthStatusOk, "warning",
			fmt.Sprintf("%s, but %d %s attention: %s.", connected, len(troubled), noun, strings.Join(troubled, "; "))
	}
	if len(names) == 0 {
		return backend.HealthStatusOk, "success",
			connected + ". The service has no datasets yet: declare one in its config file."
	}
	var parts []string
	if len(fresh) > 0 {
		plural := "s"
		if len(fresh) == 1 {
			plural = ""
		}
		parts = append(parts, fmt.Sprintf("%d dataset%s up to date (%s)", len(fresh), plural, strings.Join(fresh, ", ")))
	}
	if len(busy) > 0 {
		parts = append(parts, strings.Join(busy, "; "))
	}
	return backend.HealthStatusOk, "success", fmt.Sprintf("%s; %s.", connected, strings.Join(parts, "; "))
}
