// Runs one .tflite model with TFLM's reference kernels on the host, for edgec's goldens.
//
// Usage: operator_driver MODEL.tflite INPUT.bin OUTPUT.bin
// INPUT.bin holds every input tensor's bytes, in input order; OUTPUT.bin receives every
// output tensor's bytes, in output order. Exit status 0 on success; a message on stderr
// and status 1 when the model does not load, allocate or run.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

std::vector<unsigned char> ReadFile(const char* path) {
  std::vector<unsigned char> bytes;
  FILE* file = std::fopen(path, "rb");
  if (file == nullptr) return bytes;
  unsigned char chunk[4096];
  size_t count;
  while ((count = std::fread(chunk, 1, sizeof(chunk), file)) > 0) bytes.insert(bytes.end(), chunk, chunk + count);
  std::fclose(file);
  return bytes;
}

int Fail(const char* what) {
  std::fprintf(stderr, "operator_driver: %s\n", what);
  return 1;
}

using Resolver = tflite::MicroMutableOpResolver<40>;

void RegisterOperators(Resolver& resolver) {
  resolver.AddAdd();
  resolver.AddAveragePool2D();
  resolver.AddBatchMatMul();
  resolver.AddConcatenation();
  resolver.AddConv2D();
  resolver.AddDepthwiseConv2D();
  resolver.AddDequantize();
  resolver.AddFullyConnected();
  resolver.AddHardSwish();
  resolver.AddLeakyRelu();
  resolver.AddLogistic();
  resolver.AddMaxPool2D();
  resolver.AddMean();
  resolver.AddMirrorPad();
  resolver.AddMul();
  resolver.AddPad();
  resolver.AddPadV2();
  resolver.AddPrelu();
  resolver.AddQuantize();
  resolver.AddRelu();
  resolver.AddRelu6();
  resolver.AddReshape();
  resolver.AddResizeBilinear();
  resolver.AddResizeNearestNeighbor();
  resolver.AddSlice();
  resolver.AddSoftmax();
  resolver.AddSplit();
  resolver.AddSplitV();
  resolver.AddStridedSlice();
  resolver.AddSub();
  resolver.AddTanh();
  resolver.AddTranspose();
  resolver.AddTransposeConv();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return Fail("usage: operator_driver MODEL.tflite INPUT.bin OUTPUT.bin");
  std::vector<unsigned char> model_bytes = ReadFile(argv[1]);
  std::vector<unsigned char> input_bytes = ReadFile(argv[2]);
  if (model_bytes.empty()) return Fail("cannot read the model");
  const tflite::Model* model = tflite::GetModel(model_bytes.data());
  static Resolver resolver;
  RegisterOperators(resolver);
  static unsigned char arena[1 << 22];
  tflite::MicroInterpreter interpreter(model, resolver, arena, sizeof(arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) return Fail("AllocateTensors failed");
  size_t offset = 0;
  for (size_t i = 0; i < interpreter.inputs_size(); ++i) {
    TfLiteTensor* input = interpreter.input(i);
    if (offset + input->bytes > input_bytes.size()) return Fail("INPUT.bin is shorter than the inputs");
    std::copy(input_bytes.begin() + offset, input_bytes.begin() + offset + input->bytes, input->data.raw);
    offset += input->bytes;
  }
  if (offset != input_bytes.size()) return Fail("INPUT.bin is longer than the inputs");
  if (interpreter.Invoke() != kTfLiteOk) return Fail("Invoke failed");
  FILE* out = std::fopen(argv[3], "wb");
  if (out == nullptr) return Fail("cannot write OUTPUT.bin");
  for (size_t i = 0; i < interpreter.outputs_size(); ++i) {
    const TfLiteTensor* output = interpreter.output(i);
    std::fwrite(output->data.raw, 1, output->bytes, out);
  }
  std::fclose(out);
  return 0;
}
