// Package grafanahost starts a backend plugin binary the way Grafana's plugin manager does
// (hashicorp go-plugin, the SDK's handshake config, gRPC) and calls it as Grafana does. The
// binary-level integration test and the preview's Grafana stand-in (cmd/grafana-host) both use
// it, so what the test proves is what the preview runs.
package grafanahost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// Plugin is a running backend binary and its gRPC clients.
type Plugin struct {
	Data        pluginv2.DataClient
	Diagnostics pluginv2.DiagnosticsClient
	Resource    pluginv2.ResourceClient
	Stream      pluginv2.StreamClient
	client      *goplugin.Client
}

// Start runs the binary and completes the go-plugin handshake. Kill stops it.
func Start(binary string) (*Plugin, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("the backend binary is not built (%w): run `go tool mage` in plugin/ (or `npm run build`)", err)
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{
			grpcplugin.ProtocolVersion: {
				"data":        &grpcplugin.DataGRPCPlugin{},
				"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
				"resource":    &grpcplugin.ResourceGRPCPlugin{},
				"stream":      &grpcplugin.StreamGRPCPlugin{},
			},
		},
		Cmd:              exec.Command(binary),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		// The handshake's chatter only when something is wrong.
		Logger: hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: os.Stderr}),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("the binary %s did not complete the go-plugin handshake: %w", binary, err)
	}
	p := &Plugin{client: client}
	for name, into := range map[string]func(any) bool{
		"data":        func(raw any) (ok bool) { p.Data, ok = raw.(pluginv2.DataClient); return },
		"diagnostics": func(raw any) (ok bool) { p.Diagnostics, ok = raw.(pluginv2.DiagnosticsClient); return },
		"resource":    func(raw any) (ok bool) { p.Resource, ok = raw.(pluginv2.ResourceClient); return },
		"stream":      func(raw any) (ok bool) { p.Stream, ok = raw.(pluginv2.StreamClient); return },
	} {
		raw, err := rpc.Dispense(name)
		if err == nil && !into(raw) {
			err = fmt.Errorf("unexpected client type %T", raw)
		}
		if err != nil {
			client.Kill()
			return nil, fmt.Errorf("dispense %s from %s: %w", name, binary, err)
		}
	}
	return p, nil
}

// Kill stops the binary.
func (p *Plugin) Kill() { p.client.Kill() }

// Backend is what Grafana's HTTP API asks of a data source's backend; *Plugin answers it over
// gRPC.
type Backend interface {
	QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error)
	CheckHealth(ctx context.Context, pc backend.PluginContext) (*backend.CheckHealthResult, error)
	CallResource(ctx context.Context, req *backend.CallResourceRequest) (*backend.CallResourceResponse, error)
	SubscribeStream(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error)
	// RunStream calls send with each packet's JSON until the stream ends or ctx is done.
	RunStream(ctx context.Context, req *backend.RunStreamRequest, send func(json.RawMessage) error) error
}

var _ Backend = (*Plugin)(nil)

// QueryData is one QueryData call.
func (p *Plugin) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	res, err := p.Data.QueryData(ctx, backend.ToProto().QueryDataRequest(req))
	if err != nil {
		return nil, err
	}
	return backend.FromProto().QueryDataResponse(res)
}

// CheckHealth is one CheckHealth call.
func (p *Plugin) CheckHealth(ctx context.Context, pc backend.PluginContext) (*backend.CheckHealthResult, error) {
	res, err := p.Diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc)})
	if err != nil {
		return nil, err
	}
	return backend.FromProto().CheckHealthResponse(res), nil
}

// CallResource is one CallResource call, its chunks gathered into one answer (status and
// headers from the first, as Grafana's resource handler writes them).
func (p *Plugin) CallResource(ctx context.Context, req *backend.CallResourceRequest) (*backend.CallResourceResponse, error) {
	stream, err := p.Resource.CallResource(ctx, backend.ToProto().CallResourceRequest(req))
	if err != nil {
		return nil, err
	}
	var out *backend.CallResourceResponse
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		part := backend.FromProto().CallResourceResponse(chunk)
		if out == nil {
			out = part
			continue
		}
		out.Body = append(out.Body, part.Body...)
	}
	if out == nil {
		return nil, fmt.Errorf("the plugin answered the resource call %s with nothing", req.Path)
	}
	return out, nil
}

// SubscribeStream is one SubscribeStream call.
func (p *Plugin) SubscribeStream(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	res, err := p.Stream.SubscribeStream(ctx, backend.ToProto().SubscribeStreamRequest(req))
	if err != nil {
		return nil, err
	}
	return backend.FromProto().SubscribeStreamResponse(res), nil
}

// RunStream runs the channel's stream, sending each packet on, until it ends or ctx is done.
func (p *Plugin) RunStream(ctx context.Context, req *backend.RunStreamRequest, send func(json.RawMessage) error) error {
	stream, err := p.Stream.RunStream(ctx, backend.ToProto().RunStreamRequest(req))
	if err != nil {
		return err
	}
	for {
		packet, err := stream.Recv()
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := send(packet.Data); err != nil {
			return err
		}
	}
}
