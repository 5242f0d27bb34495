package onnx

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file is a small hand-written encoder for the part of ONNX's protobuf
// schema the exporter writes. The field numbers are those of onnx.proto
// (github.com/onnx/onnx, onnx/onnx.proto, IR version 8 = ONNX 1.12/1.13);
// each message's comment names the fields it encodes. Encoding follows the
// protobuf wire format: a tag (field number << 3 | wire type) then a varint,
// or a length and the bytes for strings, bytes and embedded messages; repeated
// scalars are written packed (proto3's default, accepted by proto2 parsers).

// Data types of TensorProto.DataType (onnx.proto: FLOAT = 1, INT64 = 7).
const (
	Float32 int32 = 1
	Int64   int32 = 7
)

// attribute types of AttributeProto.AttributeType (onnx.proto: FLOAT = 1,
// INT = 2, STRING = 3, FLOATS = 6, INTS = 7).
const (
	attrFloat  = 1
	attrInt    = 2
	attrString = 3
	attrFloats = 6
	attrInts   = 7
)

// Model is ModelProto: ir_version = 1, producer_name = 2, producer_version
// = 3, doc_string = 6, graph = 7, opset_import = 8, metadata_props = 14.
type Model struct {
	IRVersion       int64
	Opset           int64 // the default domain's (ai.onnx) opset version
	ProducerName    string
	ProducerVersion string
	Doc             string
	Graph           *Graph
	Metadata        []KV // metadata_props, in this order
}

// KV is StringStringEntryProto: key = 1, value = 2.
type KV struct{ Key, Value string }

// Graph is GraphProto: node = 1, name = 2, initializer = 5, doc_string = 10,
// input = 11, output = 12.
type Graph struct {
	Name         string
	Doc          string
	Nodes        []*Node
	Initializers []*Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
}

// Node is NodeProto: input = 1, output = 2, name = 3, op_type = 4,
// attribute = 5, doc_string = 6 (domain = 7 is left empty: ai.onnx).
type Node struct {
	Inputs, Outputs []string
	Name, OpType    string
	Attrs           []Attr
	Doc             string
}

// Attr is AttributeProto: name = 1, f = 2, i = 3, s = 4, floats = 7,
// ints = 8, type = 20. Type says which value field is set.
type Attr struct {
	Name   string
	Type   int
	F      float32
	I      int64
	S      string
	Floats []float32
	Ints   []int64
}

// Tensor is TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9
// (the values little-endian, row-major, as onnx.proto specifies raw_data).
type Tensor struct {
	Name     string
	Dims     []int64
	DataType int32
	Raw      []byte
}

// ValueInfo is ValueInfoProto (name = 1, type = 2) of a dense tensor:
// TypeProto.tensor_type = 1 holding TypeProto.Tensor (elem_type = 1,
// shape = 2), the shape a TensorShapeProto (dim = 1) of Dimensions
// (dim_value = 1 or dim_param = 2).
type ValueInfo struct {
	Name     string
	ElemType int32
	Dims     []Dim
}

// Dim is one dimension of a ValueInfo: a fixed size, or a named symbolic
// one (Param, such as "batch") when Param is not empty.
type Dim struct {
	Value int64
	Param string
}

// IntAttr, FloatAttr, StringAttr, IntsAttr and FloatsAttr make attributes.
func IntAttr(name string, v int64) Attr         { return Attr{Name: name, Type: attrInt, I: v} }
func FloatAttr(name string, v float32) Attr     { return Attr{Name: name, Type: attrFloat, F: v} }
func StringAttr(name, v string) Attr            { return Attr{Name: name, Type: attrString, S: v} }
func IntsAttr(name string, v ...int64) Attr     { return Attr{Name: name, Type: attrInts, Ints: v} }
func FloatsAttr(name string, v ...float32) Attr { return Attr{Name: name, Type: attrFloats, Floats: v} }

// FloatTensor is a float32 initializer of the given dims holding v.
func FloatTensor(name string, dims []int64, v []float32) *Tensor {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return &Tensor{Name: name, Dims: dims, DataType: Float32, Raw: raw}
}

// Int64Tensor is an int64 initializer of the given dims holding v.
func Int64Tensor(name string, dims []int64, v []int64) *Tensor {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return &Tensor{Name: name, Dims: dims, DataType: Int64, Raw: raw}
}

// Marshal encodes the model as ModelProto bytes (an .onnx file).
func (m *Model) Marshal() []byte {
	var b []byte
	b = appendInt(b, 1, m.IRVersion)
	b = appendString(b, 2, m.ProducerName)
	b = appendString(b, 3, m.ProducerVersion)
	b = appendString(b, 6, m.Doc)
	if m.Graph != nil {
		b = appendMessage(b, 7, m.Graph.marshal())
	}
	// OperatorSetIdProto: domain = 1 (empty: ai.onnx), version = 2.
	b = appendMessage(b, 8, appendInt(nil, 2, m.Opset))
	for _, kv := range m.Metadata {
		e := appendString(nil, 1, kv.Key)
		e = appendString(e, 2, kv.Value)
		b = appendMessage(b, 14, e)
	}
	return b
}

func (g *Graph) marshal() []byte {
	var b []byte
	for _, n := range g.Nodes {
		b = appendMessage(b, 1, n.marshal())
	}
	b = appendString(b, 2, g.Name)
	for _, t := range g.Initializers {
		b = appendMessage(b, 5, t.marshal())
	}
	b = appendString(b, 10, g.Doc)
	for _, v := range g.Inputs {
		b = appendMessage(b, 11, v.marshal())
	}
	for _, v := range g.Outputs {
		b = appendMessage(b, 12, v.marshal())
	}
	return b
}

func (n *Node) marshal() []byte {
	var b []byte
	for _, s := range n.Inputs {
		b = appendRepeatedString(b, 1, s)
	}
	for _, s := range n.Outputs {
		b = appendRepeatedString(b, 2, s)
	}
	b = appendString(b, 3, n.Name)
	b = appendString(b, 4, n.OpType)
	for _, a := range n.Attrs {
		b = appendMessage(b, 5, a.marshal())
	}
	return appendString(b, 6, n.Doc)
}

func (a Attr) marshal() []byte {
	b := appendString(nil, 1, a.Name)
	switch a.Type {
	case attrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case attrInt:
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	case attrString:
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, a.S)
	case attrFloats:
		var p []byte
		for _, f := range a.Floats {
			p = protowire.AppendFixed32(p, math.Float32bits(f))
		}
		b = appendMessage(b, 7, p)
	case attrInts:
		b = appendMessage(b, 8, packInts(a.Ints))
	}
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(a.Type))
}

func (t *Tensor) marshal() []byte {
	var b []byte
	if len(t.Dims) > 0 {
		b = appendMessage(b, 1, packInts(t.Dims))
	}
	b = appendInt(b, 2, int64(t.DataType))
	b = appendString(b, 8, t.Name)
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	return protowire.AppendBytes(b, t.Raw)
}

func (v ValueInfo) marshal() []byte {
	var shape []byte
	for _, d := range v.Dims {
		var e []byte
		if d.Param != "" {
			e = appendString(nil, 2, d.Param)
		} else {
			e = protowire.AppendTag(nil, 1, protowire.VarintType)
			e = protowire.AppendVarint(e, uint64(d.Value))
		}
		shape = appendMessage(shape, 1, e)
	}
	tensor := appendInt(nil, 1, int64(v.ElemType))
	tensor = protowire.AppendTag(tensor, 2, protowire.BytesType) // shape, even when empty (a scalar)
	tensor = protowire.AppendBytes(tensor, shape)
	typ := appendMessage(nil, 1, tensor)
	b := appendString(nil, 1, v.Name)
	return appendMessage(b, 2, typ)
}

// appendInt writes a varint field, omitted when 0 (its default).
func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// appendString writes a string field, omitted when empty (its default).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return appendRepeatedString(b, num, s)
}

// appendRepeatedString writes one element of a repeated string field, empty
// ones included (an empty input name is ONNX's "input omitted").
func appendRepeatedString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func packInts(v []int64) []byte {
	var p []byte
	for _, x := range v {
		p = protowire.AppendVarint(p, uint64(x))
	}
	return p
}
