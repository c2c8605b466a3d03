/**
 * Exports the seed's ResNet-18 (from its state dict) as an ONNX model that onnxruntime and other ONNX runtimes
 * run as is.
 *
 * The graph, for input `input` float32 [N,3,32,32] (N dynamic; RGB already normalized as in training,
 * (x/255 - mean)/std with the seed's CIFAR-10 mean and std) and output `logits` float32 [N,classes]:
 *   conv1:   Conv 3x3 pad 1 → BatchNormalization → Relu
 *   blocks:  Conv 3x3 (stride s) → BN → Relu → Conv 3x3 → BN, plus the input (or Conv 1x1 stride s → BN when the
 *            shape changes) → Add → Relu; stride 2 in the first block of layer2..4, as in the seed's make_layer
 *   head:    AveragePool 4x4 stride 4 (the seed's F.avg_pool2d(out, 4)) → Flatten → Gemm (fc, transB=1)
 * BatchNorm stays a BatchNormalization node in inference form (running statistics, epsilon 1e-5) rather than
 * being folded into the conv: the initializers keep the seed's state_dict names and values, and runtimes fold it
 * themselves. Widths and block counts come from the weights' shapes; the seed's structure is assumed.
 *
 * What it is not: a general PyTorch-to-ONNX tracer, nor an ONNX reader. The schema below is the subset of
 * onnx.proto this file writes, transcribed by hand (field names and numbers as in the spec).
 *
 * References: onnx/onnx.proto (IR), docs/Operators.md (Conv, BatchNormalization, Relu, Add, AveragePool,
 * Flatten, Gemm), docs/Versioning.md (IR version per opset); /work/shared/bench/seed_resnet.py.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { StateDict } from '../tensor/host';

export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'logits';
export const ONNX_DEFAULT_OPSET = 13;
/** the IR version that goes with each opset we emit (docs/Versioning.md); every op here is unchanged in 13..21 */
const IR_VERSION_OF_OPSET: Record<number, number> = {
  13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10,
};
const BN_EPSILON = 1e-5;
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

/** Builds the node list while checking each state-dict entry it uses; problems are reported all at once. */
class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly initializers: Array<{ name: string; dims: number[]; data_type: number; raw_data: Uint8Array }> = [];
  readonly problems: string[] = [];
  private readonly used = new Set<string>();

  constructor(private readonly sd: StateDict) {}

  /** Uses entry `key` as an initializer; `check` tells whether its shape is right. Returns the shape. */
  param(key: string, expect: string, check: (s: readonly number[]) => boolean): readonly number[] {
    const t = this.sd.get(key);
    this.used.add(key);
    if (t === undefined) {
      this.problems.push(`missing ${key}`);
      return [];
    }
    if (t.dtype !== 'float32' || !check(t.shape)) {
      this.problems.push(`${key}: expected float32 ${expect}, received ${t.dtype} [${t.shape.join(',')}]`);
      return t.shape;
    }
    const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    this.initializers.push({ name: key, dims: [...t.shape], data_type: FLOAT, raw_data: raw });
    return t.shape;
  }

  node(op: string, name: string, input: string[], attribute: Attr[] = []): string {
    this.nodes.push({ op_type: op, name, input, output: [name], attribute });
    return name;
  }

  /** Conv (no bias) at `prefix` ("conv1.0"), in-channels c; returns [output, out-channels]. */
  conv(prefix: string, x: string, c: number, r: number, stride: number): [string, number] {
    const w = this.param(`${prefix}.weight`, `[K,${c},${r},${r}]`, (s) => s.length === 4 && s[1] === c && s[2] === r && s[3] === r);
    const pad = (r - 1) / 2;
    const attrs = [ints('kernel_shape', [r, r]), ints('strides', [stride, stride]), ints('pads', [pad, pad, pad, pad])];
    return [this.node('Conv', prefix, [x, `${prefix}.weight`], attrs), w[0] ?? 0];
  }

  batchNorm(prefix: string, x: string, k: number): string {
    const names = ['weight', 'bias', 'running_mean', 'running_var'].map((p) => `${prefix}.${p}`);
    for (const n of names) this.param(n, `[${k}]`, (s) => s.length === 1 && s[0] === k);
    const counter = this.sd.get(`${prefix}.num_batches_tracked`);
    this.used.add(`${prefix}.num_batches_tracked`);
    if (counter !== undefined && counter.data.length !== 1) {
      this.problems.push(`${prefix}.num_batches_tracked: expected a scalar, received [${counter.shape.join(',')}]`);
    }
    return this.node('BatchNormalization', prefix, [x, ...names], [{ name: 'epsilon', type: ATTR_FLOAT, f: BN_EPSILON }]);
  }

  hasKey(key: string): boolean {
    return this.sd.has(key);
  }

  /** Keys present in the state dict that the graph did not use (num_batches_tracked is not needed). */
  unused(): string[] {
    return [...this.sd.keys()].filter((k) => !this.used.has(k));
  }
}

/** One residual block of the seed (`ResidualBlock`); returns its output and out-channels. */
function block(g: GraphBuilder, p: string, x: string, c: number, stride: number): [string, number] {
  const [a, k] = g.conv(`${p}.left.0`, x, c, 3, stride);
  const b = g.node('Relu', `${p}.left.2`, [g.batchNorm(`${p}.left.1`, a, k)]);
  const [d] = g.conv(`${p}.left.3`, b, k, 3, 1);
  const left = g.batchNorm(`${p}.left.4`, d, k);
  let shortcut = x;
  // the seed adds a conv 1x1 + BN shortcut exactly when the block changes the shape
  if (stride !== 1 || c !== k || g.hasKey(`${p}.shortcut.0.weight`)) {
    const [s] = g.conv(`${p}.shortcut.0`, x, c, 1, stride);
    shortcut = g.batchNorm(`${p}.shortcut.1`, s, k);
  }
  return [g.node('Relu', p, [g.node('Add', `${p}.add`, [left, shortcut])]), k];
}

function buildGraph(sd: StateDict): { g: GraphBuilder; classes: number } {
  const g = new GraphBuilder(sd);
  const [c1, c0] = g.conv('conv1.0', ONNX_INPUT_NAME, 3, 3, 1);
  let x = g.node('Relu', 'conv1.2', [g.batchNorm('conv1.1', c1, c0)]);
  let c = c0;
  for (let layer = 1; layer <= 4; layer++) {
    for (let b = 0; b === 0 || g.hasKey(`layer${layer}.${b}.left.0.weight`); b++) {
      [x, c] = block(g, `layer${layer}.${b}`, x, c, layer > 1 && b === 0 ? 2 : 1);
    }
  }
  const pooled = g.node('AveragePool', 'avg_pool', [x], [ints('kernel_shape', [4, 4]), ints('strides', [4, 4])]);
  const flat = g.node('Flatten', 'flatten', [pooled], [int('axis', 1)]);
  const fc = g.param('fc.weight', `[classes,${c}]`, (s) => s.length === 2 && s[1] === c);
  const classes = fc[0] ?? 0;
  g.param('fc.bias', `[${classes}]`, (s) => s.length === 1 && s[0] === classes);
  g.nodes.push({ op_type: 'Gemm', name: 'fc', input: [flat, 'fc.weight', 'fc.bias'], output: [ONNX_OUTPUT_NAME], attribute: [int('transB', 1)] });
  return { g, classes };
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
 * What keeps `sd` from being the seed's ResNet-18 (any width, any number of classes): missing keys,
 * mis-shaped or non-float32 entries, unexpected keys; empty when it is one. num_batches_tracked is optional.
 */
export function seedStateDictProblems(sd: StateDict): string[] {
  const { g } = buildGraph(sd);
  const unused = g.unused();
  return unused.length > 0 ? [...g.problems, `unexpected ${unused.join(', ')}`] : g.problems;
}

/** Serializes the seed ResNet-18 with these weights as ONNX model bytes. */
export function exportOnnx(sd: StateDict, opts: OnnxExportOptions = {}): Uint8Array {
  const opset = opts.opset ?? ONNX_DEFAULT_OPSET;
  const irVersion = IR_VERSION_OF_OPSET[opset];
  if (irVersion === undefined) throw new Error(`exportOnnx: expected opset 13..21, received ${opset}`);
  const { g, classes } = buildGraph(sd);
  const unused = g.unused();
  if (unused.length > 0) g.problems.push(`unexpected ${unused.join(', ')}`);
  if (g.problems.length > 0) {
    throw new Error(`exportOnnx: the weights are not the seed's ResNet-18: ${g.problems.join('; ')}`);
  }
  const graph = {
    name: 'resnet18',
    doc_string: `input: float32 [N,3,32,32], RGB normalized as in training; output: ${ONNX_OUTPUT_NAME} [N,${classes}]`,
    node: g.nodes,
    initializer: g.initializers,
    input: [tensorValue(ONNX_INPUT_NAME, ['N', 3, 32, 32])],
    output: [tensorValue(ONNX_OUTPUT_NAME, ['N', classes])],
  };
  const metadata = Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value }));
  const model = {
    ir_version: irVersion,
    producer_name: 'resnet-ts',
    producer_version: opts.producerVersion ?? '',
    opset_import: [{ domain: '', version: opset }],
    graph,
    metadata_props: metadata,
  };
  const T = onnxModelType();
  return T.encode(T.fromObject(model)).finish();
}

/** Writes the ONNX model for these weights to `file`. */
export function writeOnnxFile(file: string, sd: StateDict, opts: OnnxExportOptions = {}): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, exportOnnx(sd, opts));
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true }); // a failed write (a folder at `file`, a full disk) leaves no temp file behind
    throw err;
  }
}
