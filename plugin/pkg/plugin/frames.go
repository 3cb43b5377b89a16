package plugin

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/livesync/livesync-datasource/pkg/models"
)

// serviceFrame is one frame of the service's answer: Grafana DataFrame JSON (schema + values).
type serviceFrame struct {
	Schema struct {
		Name   string           `json:"name"`
		RefID  string           `json:"refId"`
		Meta   *data.FrameMeta  `json:"meta"`
		Fields []serviceFieldJS `json:"fields"`
	} `json:"schema"`
	Data struct {
		Values [][]json.RawMessage `json:"values"`
	} `json:"data"`
}

type serviceFieldJS struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	TypeInfo *struct {
		Frame    string `json:"frame"`
		Nullable bool   `json:"nullable"`
	} `json:"typeInfo"`
	Labels data.Labels       `json:"labels"`
	Config *data.FieldConfig `json:"config"`
}

// toFrame turns one of the service's frames into an SDK frame, field for field: names, labels,
// config, values (times in epoch ms), meta (freshness in meta.custom, stale warnings in
// meta.notices). It then readies the frame for panels:
// the refId of the query, tables preferred for status and table-format metrics, seconds as the
// unit of age_seconds.
func toFrame(raw json.RawMessage, q models.Query) (*data.Frame, error) {
	var sf serviceFrame
	if err := json.Unmarshal(raw, &sf); err != nil {
		return nil, fmt.Errorf("LiveSync returned a frame that is not DataFrame JSON: %w", err)
	}
	if len(sf.Data.Values) != 0 && len(sf.Data.Values) != len(sf.Schema.Fields) {
		return nil, fmt.Errorf("LiveSync returned a frame with %d fields and %d columns", len(sf.Schema.Fields), len(sf.Data.Values))
	}
	frame := data.NewFrame(sf.Schema.Name)
	frame.RefID = sf.Schema.RefID
	if frame.RefID == "" {
		frame.RefID = q.RefID
	}
	frame.Meta = sf.Schema.Meta
	for i, fs := range sf.Schema.Fields {
		var column []json.RawMessage
		if i < len(sf.Data.Values) {
			column = sf.Data.Values[i]
		}
		field, err := toField(fs, column)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", fs.Name, err)
		}
		frame.Fields = append(frame.Fields, field)
	}
	if q.Kind == models.KindStatus || (q.Kind == models.KindMetrics && q.Format == "table") {
		if frame.Meta == nil {
			frame.Meta = &data.FrameMeta{}
		}
		frame.Meta.PreferredVisualization = data.VisTypeTable
	}
	for _, f := range frame.Fields {
		if f.Name == "age_seconds" {
			if f.Config == nil {
				f.Config = &data.FieldConfig{}
			}
			if f.Config.Unit == "" {
				f.Config.Unit = "s"
			}
		}
	}
	return frame, nil
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// fieldKind is the value type of a field: typeInfo.frame when the service gives it, else the
// DataFrame JSON `type`.
func fieldKind(fs serviceFieldJS) (string, error) {
	if fs.TypeInfo != nil && fs.TypeInfo.Frame != "" {
		switch fs.TypeInfo.Frame {
		case "time.Time":
			return "time", nil
		case "float64", "float32", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8":
			return "number", nil
		case "string":
			return "string", nil
		case "bool":
			return "boolean", nil
		case "json.RawMessage":
			return "other", nil
		}
	}
	switch fs.Type {
	case "time", "number", "string", "boolean", "other":
		return fs.Type, nil
	case "":
		return "", fmt.Errorf("has no type")
	default:
		return "other", nil
	}
}

// toField builds a field. Numbers are nullable float64 (the service's "no value in this bucket" is
// null); times, strings and booleans are nullable only when a value is null, so a time series'
// time field stays time.Time, as Grafana's alerting expects.
func toField(fs serviceFieldJS, column []json.RawMessage) (*data.Field, error) {
	kind, err := fieldKind(fs)
	if err != nil {
		return nil, err
	}
	nullable := fs.TypeInfo != nil && fs.TypeInfo.Nullable
	for _, v := range column {
		if isNull(v) {
			nullable = true
			break
		}
	}
	var field *data.Field
	switch kind {
	case "time":
		if nullable {
			values := make([]*time.Time, len(column))
			for i, v := range column {
				if isNull(v) {
					continue
				}
				t, err := epochMs(v)
				if err != nil {
					return nil, err
				}
				values[i] = &t
			}
			field = data.NewField(fs.Name, fs.Labels, values)
		} else {
			values := make([]time.Time, len(column))
			for i, v := range column {
				t, err := epochMs(v)
				if err != nil {
					return nil, err
				}
				values[i] = t
			}
			field = data.NewField(fs.Name, fs.Labels, values)
		}
	case "number":
		values := make([]*float64, len(column))
		for i, v := range column {
			if isNull(v) {
				continue
			}
			var n float64
			if err := json.Unmarshal(v, &n); err != nil {
				return nil, fmt.Errorf("value %d is not a number: %s", i, v)
			}
			values[i] = &n
		}
		field = data.NewField(fs.Name, fs.Labels, values)
	case "string":
		values := make([]*string, len(column))
		for i, v := range column {
			if isNull(v) {
				continue
			}
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("value %d is not a string: %s", i, v)
			}
			values[i] = &s
		}
		field = data.NewField(fs.Name, fs.Labels, values)
		if !nullable {
			field = concreteStrings(fs.Name, fs.Labels, values)
		}
	case "boolean":
		values := make([]*bool, len(column))
		for i, v := range column {
			if isNull(v) {
				continue
			}
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				return nil, fmt.Errorf("value %d is not a boolean: %s", i, v)
			}
			values[i] = &b
		}
		field = data.NewField(fs.Name, fs.Labels, values)
		if !nullable {
			plain := make([]bool, len(values))
			for i, b := range values {
				plain[i] = *b
			}
			field = data.NewField(fs.Name, fs.Labels, plain)
		}
	default:
		values := make([]*json.RawMessage, len(column))
		for i, v := range column {
			if isNull(v) {
				continue
			}
			copied := append(json.RawMessage(nil), v...)
			values[i] = &copied
		}
		field = data.NewField(fs.Name, fs.Labels, values)
	}
	field.Config = fs.Config
	return field, nil
}

func concreteStrings(name string, labels data.Labels, values []*string) *data.Field {
	plain := make([]string, len(values))
	for i, s := range values {
		plain[i] = *s
	}
	return data.NewField(name, labels, plain)
}

// epochMs reads a time value: epoch milliseconds, as the service writes them.
func epochMs(v json.RawMessage) (time.Time, error) {
	var ms float64
	if err := json.Unmarshal(v, &ms); err != nil {
		return time.Time{}, fmt.Errorf("time value is not epoch milliseconds: %s", v)
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}
