package models

import (
	"encoding/json"
	"fmt"
)

// Query kinds, as the query editor stores them.
const (
	KindMetrics     = "metrics"
	KindFreshness   = "freshness"
	KindStatus      = "status"
	KindAnnotations = "annotations"
)

// Query is a LiveSync query's model, as the frontend saves it (types.ts LiveSyncQuery), after
// template variables have been applied.
type Query struct {
	RefID        string              `json:"refId"`
	Kind         string              `json:"kind,omitempty"`
	Dataset      string              `json:"dataset,omitempty"`
	Aggregations []string            `json:"aggregations,omitempty"`
	GroupBy      []string            `json:"groupBy,omitempty"`
	Filters      map[string][]string `json:"filters,omitempty"`
	Format       string              `json:"format,omitempty"`
	ChangesOnly  bool                `json:"changesOnly,omitempty"`
	Live         *bool               `json:"live,omitempty"`
	// AnnotationKinds are the state changes an annotations query draws as regions; nil means
	// the service's default (all of them), empty means none.
	AnnotationKinds []string `json:"annotationKinds,omitempty"`
	// MinRecords also marks each sync run that applied at least this many records (annotations).
	MinRecords int `json:"minRecords,omitempty"`
}

// ParseQuery reads a query's JSON model; the kind defaults to metrics.
func ParseQuery(raw json.RawMessage) (Query, error) {
	var q Query
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &q); err != nil {
			return Query{}, fmt.Errorf("the query model is not valid JSON: %w", err)
		}
	}
	if q.Kind == "" {
		q.Kind = KindMetrics
	}
	return q, nil
}

// ServiceQuery is one entry of POST /api/query's `queries`.
type ServiceQuery struct {
	RefID        string              `json:"refId"`
	Kind         string              `json:"kind,omitempty"`
	Dataset      string              `json:"dataset,omitempty"`
	Aggregations []string            `json:"aggregations,omitempty"`
	GroupBy      []string            `json:"groupBy,omitempty"`
	Filters      map[string][]string `json:"filters,omitempty"`
	Format       string              `json:"format,omitempty"`
}

// Validate says what makes a query unanswerable, or nil. The service checks the rest.
func (q Query) Validate() error {
	switch q.Kind {
	case KindMetrics:
		if q.Dataset == "" {
			return fmt.Errorf("choose a dataset")
		}
	case KindFreshness, KindStatus, KindAnnotations:
	default:
		return fmt.Errorf("unknown query kind %q: use metrics, freshness, status or annotations", q.Kind)
	}
	return nil
}

// ToService is the service's form of the query (an entry of POST /api/query's `queries`).
func (q Query) ToService() ServiceQuery {
	if q.Kind == KindFreshness || q.Kind == KindStatus {
		return ServiceQuery{RefID: q.RefID, Kind: q.Kind, Dataset: q.Dataset}
	}
	out := ServiceQuery{RefID: q.RefID, Dataset: q.Dataset, Aggregations: q.Aggregations, Format: q.Format}
	if len(out.Aggregations) == 0 {
		out.Aggregations = []string{"count"}
	}
	if out.Format == "" {
		out.Format = "timeseries"
	}
	if len(q.GroupBy) > 0 {
		out.GroupBy = q.GroupBy
	}
	for dim, values := range q.Filters {
		if len(values) == 0 {
			continue
		}
		if out.Filters == nil {
			out.Filters = map[string][]string{}
		}
		out.Filters[dim] = values
	}
	return out
}

// QueryRequest is the body of POST /api/query.
type QueryRequest struct {
	Range         TimeRange      `json:"range"`
	IntervalMs    int64          `json:"intervalMs"`
	MaxDataPoints int64          `json:"maxDataPoints"`
	Queries       []ServiceQuery `json:"queries"`
}

// TimeRange is in epoch milliseconds.
type TimeRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}
