/**
 * Exports a ResNet-18 of any width and class count (src/models) as an ONNX model that onnxruntime and other ONNX
 * runtimes run as is. The graph is written by walking the model's modules, the same tree whose forward passes
 * compute our logits, so a model of another spec exports without a graph of its own:
 *   Conv2d → Conv, BatchNorm2d → BatchNormalization (inference form: running statistics, the module's epsilon),
 *   ReLU → Relu, Sequential → its layers in order, BasicBlock → left branch + shortcut (the input, or its
 *   Sequential) → Add → Relu; ResNet → its stages in order, then AveragePool over the final map (the model's
 *   avg_pool2d) → Flatten → Gemm (fc, transB=1).
 * Input `input` float32 [N,3,S,S] (N dynamic, S the spec's inputSize; RGB already normalized as in training,
 * (x/255 - mean)/std with the seed's CIFAR-10 mean and std), output `logits` float32 [N,classes]. Node and
 * initializer names are the modules' state-dict names. BatchNorm stays a node rather than being folded into the
 * conv: the initializers keep the seed's names and values, and runtimes fold it themselves.
 *
 * What it is not: a general PyTorch-to-ONNX tracer, nor an ONNX reader. The schema below is the subset of
 * onnx.proto this file writes, transcribed by hand (field names and numbers as in the ONNX IR definition; the IR
 * version that goes with each opset from the ONNX versioning table).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { backendByName } from '../backend';
import { SEED_SPEC, fitToSpec, guessSpec, modelFromWeights, type ModelSpec } from '../models';
import { BasicBlock, type ResNet } from '../models/resnet';
import { BatchNorm2d, Conv2d, Linear, ReLU, Sequential } from '../nn/layers';
import type { Module } from '../nn/module';
import type { StateDict } from '../tensor/host';

export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'logits';
export const ONNX_DEFAULT_OPSET = 13;
/** the IR version that goes with each opset we emit; every op here is unchanged in 13..21 */
const IR_VERSION_OF_OPSET: Record<number, number> = {
  13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10,
};
const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR_INT = 2;
const ATTR_INTS = 7;
const ATTR_FLOAT = 1;

const SCHEMA = `
syntax = "proto2";
package onnx;
message AttributeProto {
  optional string name = 1; optional float f = 2; optional int64 i = 3; optional bytes s = 4;
  repeated float floats = 7; repeated int64 ints = 8; optional int32 type = 20;
}
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; optional string doc_string = 3; }
message NodeProto {
  repeated string input = 1; repeated string output = 2; optional string name = 3; optional string op_type = 4;
  repeated AttributeProto attribute = 5; optional string doc_string = 6; optional string domain = 7;
}
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message TensorProto {
  repeated int64 dims = 1; optional int32 data_type = 2; optional string name = 8; optional bytes raw_data = 9;
  optional string doc_string = 12;
}
message GraphProto {
  repeated NodeProto node = 1; optional string name = 2; repeated TensorProto initializer = 5;
  optional string doc_string = 10; repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12;
}
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message ModelProto {
  optional int64 ir_version = 1; optional string producer_name = 2; optional string producer_version = 3;
  optional string domain = 4; optional int64 model_version = 5; optional string doc_string = 6;
  optional GraphProto graph = 7; repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
`;

let modelType: protobuf.Type | undefined;
function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('onnx.ModelProto');
  return modelType;
}

type Attr = { name: string; type: number; i?: number; ints?: number[]; f?: number };
interface Node { op_type: string; name: string; input: string[]; output: string[]; attribute: Attr[] }

const ints = (name: string, v: number[]): Attr => ({ name, type: ATTR_INTS, ints: v });
const int = (name: string, v: number): Attr => ({ name, type: ATTR_INT, i: v });

/** Collects nodes and initializers; initializers are the model's own tensors, under their state-dict names. */
class GraphWriter {
  readonly nodes: Node[] = [];
  readonly initializers: Array<{ name: string; dims: number[]; data_type: number; raw_data: Uint8Array }> = [];

  constructor(private readonly sd: StateDict) {}

  /** The model's tensor `key` as an initializer; returns its name. */
  init(key: string): string {
    const t = this.sd.get(key);
    if (t === undefined || t.dtype !== 'float32') {
      throw new Error(`exportOnnx: expected the model to hold a float32 tensor ${key}, received ${t ? t.dtype : 'none'}`);
    }
    const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    this.initializers.push({ name: key, dims: [...t.shape], data_type: FLOAT, raw_data: raw });
    return key;
  }

  node(op: string, name: string, input: string[], attribute: Attr[] = [], output = name): string {
    this.nodes.push({ op_type: op, name, input, output: [output], attribute });
    return output;
  }
}

/** Writes module `m`, named `name` in the state dict, applied to value `x`; returns the name of its output. */
function emit(g: GraphWriter, m: Module, name: string, x: string): string {
  if (m instanceof Conv2d) {
    const r = m.kernelSize;
    const p = m.padding;
    const attrs = [ints('kernel_shape', [r, r]), ints('strides', [m.stride, m.stride]), ints('pads', [p, p, p, p])];
    const inputs = [x, g.init(`${name}.weight`), ...(m.bias ? [g.init(`${name}.bias`)] : [])];
    return g.node('Conv', name, inputs, attrs);
  }
  if (m instanceof BatchNorm2d) {
    const inputs = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => g.init(`${name}.${k}`));
    return g.node('BatchNormalization', name, [x, ...inputs], [{ name: 'epsilon', type: ATTR_FLOAT, f: m.eps }]);
  }
  if (m instanceof ReLU) return g.node('Relu', name, [x]);
  if (m instanceof Sequential) return m.layers.reduce((h, layer, i) => emit(g, layer, `${name}.${i}`, h), x);
  if (m instanceof BasicBlock) {
    const left = emit(g, m.left, `${name}.left`, x);
    // an empty shortcut is the identity: the block keeps the shape
    const shortcut = m.shortcut.layers.length > 0 ? emit(g, m.shortcut, `${name}.shortcut`, x) : x;
    return g.node('Relu', name, [g.node('Add', `${name}.add`, [left, shortcut])]);
  }
  throw new Error(`exportOnnx: no ONNX form for module ${name} (${m.constructor.name})`);
}

/** The whole model: its stages in order, then the head (average pool over the final map, flatten, fc). */
function writeGraph(model: ResNet, spec: ModelSpec): GraphWriter {
  const g = new GraphWriter(model.stateDict());
  let x = ONNX_INPUT_NAME;
  for (const [name, child] of model.namedChildren()) {
    if (child !== model.fc) x = emit(g, child, name, x);
  }
  // each of layer2..4 halves the map: the seed's F.avg_pool2d(out, 4) of a 32x32 input averages the whole 4x4 map
  const map = spec.inputSize / 8;
  const pooled = g.node('AveragePool', 'avg_pool', [x], [ints('kernel_shape', [map, map]), ints('strides', [map, map])]);
  const flat = g.node('Flatten', 'flatten', [pooled], [int('axis', 1)]);
  const fc: Linear = model.fc;
  const inputs = [flat, g.init('fc.weight'), ...(fc.bias ? [g.init('fc.bias')] : [])];
  g.node('Gemm', 'fc', inputs, [int('transB', 1)], ONNX_OUTPUT_NAME);
  return g;
}

function tensorValue(name: string, dims: Array<number | string>) {
  const dim = dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: FLOAT, shape: { dim } } } };
}

export interface OnnxExportOptions {
  /** ONNX opset, 13 (default) to 21 */
  opset?: number;
  /** producer_version recorded in the model */
  producerVersion?: string;
  /** extra metadata_props */
  metadata?: Record<string, string>;
}

/**
 * What keeps `sd` from being the seed's ResNet-18 at the width and class count its conv1.0.weight and fc.weight
 * imply (the seed's 64 and 10 where they are missing or mis-shaped): missing keys, mis-shaped or non-float32
 * entries, unexpected keys; empty when it is one. num_batches_tracked is optional.
 */
export function seedStateDictProblems(sd: StateDict): string[] {
  const guess = guessSpec(sd);
  if (typeof guess !== 'string') return fitToSpec(sd, guess).lines;
  const conv1 = sd.get('conv1.0.weight')?.shape;
  const fc = sd.get('fc.weight')?.shape;
  const width = conv1 !== undefined && conv1.length === 4 && conv1[0] >= 1 ? conv1[0] : SEED_SPEC.width;
  const numClasses = fc !== undefined && fc.length === 2 && fc[0] >= 1 ? fc[0] : SEED_SPEC.numClasses;
  return fitToSpec(sd, { ...SEED_SPEC, width, numClasses }).lines;
}

function checkOpset(opset: number): number {
  const irVersion = IR_VERSION_OF_OPSET[opset];
  if (irVersion === undefined) throw new Error(`exportOnnx: expected opset 13..21, received ${opset}`);
  return irVersion;
}

/** Serializes `model` (of `spec`) as ONNX model bytes, by walking its modules. */
export function exportModelOnnx(model: ResNet, spec: ModelSpec, opts: OnnxExportOptions = {}): Uint8Array {
  const opset = opts.opset ?? ONNX_DEFAULT_OPSET;
  const irVersion = checkOpset(opset);
  const g = writeGraph(model, spec);
  const s = spec.inputSize;
  const graph = {
    name: spec.arch,
    doc_string: `input: float32 [N,3,${s},${s}], RGB normalized as in training; output: ${ONNX_OUTPUT_NAME} [N,${spec.numClasses}]`,
    node: g.nodes,
    initializer: g.initializers,
    input: [tensorValue(ONNX_INPUT_NAME, ['N', 3, s, s])],
    output: [tensorValue(ONNX_OUTPUT_NAME, ['N', spec.numClasses])],
  };
  const metadata = Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value }));
  const onnxModel = {
    ir_version: irVersion,
    producer_name: 'resnet-ts',
    producer_version: opts.producerVersion ?? '',
    opset_import: [{ domain: '', version: opset }],
    graph,
    metadata_props: metadata,
  };
  const T = onnxModelType();
  return T.encode(T.fromObject(onnxModel)).finish();
}

/**
 * Serializes the ResNet-18 these weights are (spec: `opts.spec` as a checkpoint recorded it, else inferred from the
 * shapes) as ONNX model bytes: the weights are checked, loaded into the model the factory builds, and it is walked.
 */
export function exportOnnx(sd: StateDict, opts: OnnxExportOptions & { spec?: unknown } = {}): Uint8Array {
  checkOpset(opts.opset ?? ONNX_DEFAULT_OPSET);
  const problems = seedStateDictProblems(sd);
  if (problems.length > 0) {
    throw new Error(`exportOnnx: the weights are not the seed's ResNet-18: ${problems.join('; ')}`);
  }
  // the reference backend: exporting needs the values, not speed, and works where the addon is not built
  const { model, spec } = modelFromWeights(sd, { recorded: opts.spec, where: 'exportOnnx', backend: backendByName('reference') });
  try {
    return exportModelOnnx(model, spec, opts);
  } finally {
    model.dispose();
  }
}

/** Writes the ONNX model for these weights to `file`. */
export function writeOnnxFile(file: string, sd: StateDict, opts: OnnxExportOptions & { spec?: unknown } = {}): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, exportOnnx(sd, opts));
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true }); // a failed write (a folder at `file`, a full disk) leaves no temp file behind
    throw err;
  }
}
