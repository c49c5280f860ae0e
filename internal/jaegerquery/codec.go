package jaegerquery

import (
	"fmt"

	"google.golang.org/grpc/encoding"
)

// rawCodec is a gRPC codec that passes messages through as bytes: a
// request is a []byte already encoded with protowire, a reply is read
// into a *[]byte and decoded by its caller.
type rawCodec struct{}

var _ encoding.Codec = rawCodec{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case *[]byte:
		return *b, nil
	}
	return nil, fmt.Errorf("jaegerquery: marshal %T: want []byte", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("jaegerquery: unmarshal into %T: want *[]byte", v)
	}
	// gRPC may reuse data's buffer once Unmarshal returns.
	*b = append((*b)[:0], data...)
	return nil
}

// Name is "proto": the bytes are protobuf, and the content type a server
// sees is the usual application/grpc+proto.
func (rawCodec) Name() string { return "proto" }
