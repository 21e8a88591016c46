package sdk

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"insitu/plugins/sdk/internal/pluginpb"
)

// codecSeeds are encoded TrainRequests (and near misses) that the codec's fast path must decode
// exactly as protobuf does.
func codecSeeds(t testing.TB) [][]byte {
	enc := func(m *pluginpb.TrainRequest) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rows := enc(&pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_Rows{Rows: []byte("arrow ipc bytes")}})
	end := enc(&pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_RowsEnd{RowsEnd: &pluginpb.RowsEnd{Bytes: 15}}})
	hdr := enc(&pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_Header{Header: &pluginpb.TrainHeader{Features: []string{"f"}}}})
	padded := append(protowire.AppendTag(nil, 2, protowire.BytesType), 0x83, 0x80, 0x00, 'a', 'b', 'c') // length 3 as a 3-byte varint
	return [][]byte{
		rows, end, hdr, padded,
		enc(&pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_Rows{Rows: []byte{}}}),
		append(bytes.Clone(rows), end...), // a second field after the chunk
		append(bytes.Clone(end), rows...), // the chunk last wins
		rows[:len(rows)-1],                // truncated
		append(bytes.Clone(rows), 0),      // trailing garbage
		{rows[0]},
		{},
	}
}

// checkCodec decodes data with the server codec and with protobuf and fails unless both agree.
func checkCodec(t *testing.T, data []byte) {
	var got, want pluginpb.TrainRequest
	gotErr := newServerCodec().Unmarshal(bytes.Clone(data), &got)
	wantErr := proto.Unmarshal(data, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%x: codec error %v, protobuf error %v", data, gotErr, wantErr)
	}
	if gotErr == nil && !proto.Equal(&got, &want) {
		t.Fatalf("%x: codec decodes %v, protobuf %v", data, &got, &want)
	}
}

func TestServerCodecAgreesWithProtobuf(t *testing.T) {
	for _, data := range codecSeeds(t) {
		checkCodec(t, data)
	}
}

func TestServerCodecAliasesRowChunks(t *testing.T) {
	chunk := bytes.Repeat([]byte{7}, 1000)
	data, err := proto.Marshal(&pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_Rows{Rows: chunk}})
	if err != nil {
		t.Fatal(err)
	}
	var m pluginpb.TrainRequest
	m.Msg = &pluginpb.TrainRequest_RowsEnd{RowsEnd: &pluginpb.RowsEnd{Bytes: 1}} // replaced, not merged
	if err := newServerCodec().Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	got := m.GetRows()
	if !bytes.Equal(got, chunk) || cap(got) != len(got) {
		t.Fatalf("rows: %d bytes, cap %d", len(got), cap(got))
	}
	if &got[len(got)-1] != &data[len(data)-1] {
		t.Fatal("the chunk was copied out of the receive buffer")
	}
	// Other messages go through protobuf unchanged.
	hdr := &pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_Header{Header: &pluginpb.TrainHeader{Label: "y"}}}
	b, err := newServerCodec().Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var back pluginpb.TrainRequest
	if err := newServerCodec().Unmarshal(b, &back); err != nil || back.GetHeader().GetLabel() != "y" {
		t.Fatalf("header round trip: %v, %v", &back, err)
	}
}

func FuzzServerCodec(f *testing.F) {
	for _, data := range codecSeeds(f) {
		f.Add(data)
	}
	f.Fuzz(checkCodec)
}
