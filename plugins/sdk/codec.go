package sdk

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/encoding/protowire"

	"insitu/plugins/sdk/internal/pluginpb"
)

// serverCodec is the plugin's gRPC codec: protobuf, except that a TrainRequest that is one chunk
// of rows (all of the row stream's messages but its first and last) keeps its bytes in the
// message's receive buffer instead of copying them. gRPC hands the codec a buffer it allocated
// for the one message (the server has no receive-buffer pool), so the chunk may alias it.
type serverCodec struct {
	proto encoding.Codec
}

func newServerCodec() serverCodec {
	return serverCodec{proto: encoding.GetCodec(proto.Name)}
}

// rowsTag is the key of TrainRequest.rows (field 2, length-delimited).
var rowsTag = protowire.AppendTag(nil, 2, protowire.BytesType)

func (c serverCodec) Marshal(v any) ([]byte, error) { return c.proto.Marshal(v) }

func (c serverCodec) Unmarshal(data []byte, v any) error {
	if m, ok := v.(*pluginpb.TrainRequest); ok && len(data) > len(rowsTag) && data[0] == rowsTag[0] {
		if b, n := protowire.ConsumeBytes(data[len(rowsTag):]); n == len(data)-len(rowsTag) {
			m.Reset()
			m.Msg = &pluginpb.TrainRequest_Rows{Rows: b[:len(b):len(b)]}
			return nil
		}
	}
	return c.proto.Unmarshal(data, v)
}

func (serverCodec) Name() string { return proto.Name }
