// Package pluginpb holds the protobuf messages and gRPC stubs of the insitu plugin protocol,
// generated from plugin.proto. Nothing outside insitu/plugins/sdk uses it: banks program against
// the Go types of package sdk, and the host against package host. See README.md to regenerate.
package pluginpb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto
