// native/jpeg.cc: a second, small addon (build/Release/resnet_jpeg.node) that decodes baseline 8-bit RGB JPEGs of a
// known size with libjpeg-turbo, the library libvips (sharp) and PIL decode JPEGs with.
//
// What it is: decodeJpegs(list, width, height, out) decodes each buffer of `list` into its slot of `out` (RGB,
// row-major, width*height*3 bytes per image) with libjpeg's defaults, the settings sharp and PIL use (the accurate
// integer IDCT, fancy chroma upsampling), and returns one flag per image: 1 decoded, 0 not (any error, any warning
// about corrupt data, another size or component count). It exists for the tiny images of CIFAR-10: sharp's fixed
// cost per call (~0.5 ms: a libvips pipeline, threads) is ten times the decoding itself at 32x32.
// What it is not: a general decoder. Callers (src/data/jpeg-native.ts) use it only for files isPlainJpeg accepted
// and hand every image it refuses to sharp, whose messages name what is wrong; no EXIF, ICC or Adobe handling.
// References: libjpeg-turbo's libjpeg.txt (jpeg_mem_src, error_exit and setjmp/longjmp, emit_message warnings).
#include <napi.h>

#include <csetjmp>
#include <cstdio>
#include <cstdint>

#include <jpeglib.h>

namespace {

struct ErrorMgr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

void onError(j_common_ptr c) { std::longjmp(reinterpret_cast<ErrorMgr*>(c->err)->jump, 1); }
void quiet(j_common_ptr) {}

/** One image into out; false on any failure or corrupt-data warning. No C++ objects live across setjmp. */
bool decodeOne(const uint8_t* bytes, size_t n, JDIMENSION width, JDIMENSION height, uint8_t* out) {
  jpeg_decompress_struct d;
  ErrorMgr err;
  d.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = onError;
  err.pub.output_message = quiet;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&d);
    return false;
  }
  jpeg_create_decompress(&d);
  jpeg_mem_src(&d, bytes, static_cast<unsigned long>(n));
  if (jpeg_read_header(&d, TRUE) != JPEG_HEADER_OK || d.image_width != width || d.image_height != height ||
      d.num_components != 3 || d.data_precision != 8) {
    jpeg_destroy_decompress(&d);
    return false;
  }
  d.out_color_space = JCS_RGB;
  jpeg_start_decompress(&d);
  if (d.output_width != width || d.output_height != height || d.output_components != 3) {
    jpeg_destroy_decompress(&d);
    return false;
  }
  const size_t stride = static_cast<size_t>(width) * 3;
  while (d.output_scanline < d.output_height) {
    JSAMPROW row = out + d.output_scanline * stride;
    jpeg_read_scanlines(&d, &row, 1);
  }
  jpeg_finish_decompress(&d);
  const bool clean = err.pub.num_warnings == 0;
  jpeg_destroy_decompress(&d);
  return clean;
}

// decodeJpegs(list: Uint8Array[], width, height, out: Uint8Array) -> Uint8Array flags (1 decoded, 0 not)
Napi::Value decodeJpegs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsArray() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsTypedArray())
    throw Napi::TypeError::New(env, "decodeJpegs(list: Uint8Array[], width, height, out: Uint8Array)");
  Napi::Array list = info[0].As<Napi::Array>();
  const int64_t w = info[1].As<Napi::Number>().Int64Value(), h = info[2].As<Napi::Number>().Int64Value();
  Napi::Uint8Array out = info[3].As<Napi::Uint8Array>();
  if (w < 1 || h < 1 || w > 65500 || h > 65500) throw Napi::RangeError::New(env, "decodeJpegs: width and height must be 1..65500");
  const size_t per = static_cast<size_t>(w) * static_cast<size_t>(h) * 3;
  const uint32_t n = list.Length();
  if (out.ByteLength() < per * n)
    throw Napi::RangeError::New(env, "decodeJpegs: out holds " + std::to_string(out.ByteLength()) + " bytes, " +
                                         std::to_string(n) + " images need " + std::to_string(per * n));
  Napi::Uint8Array flags = Napi::Uint8Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "decodeJpegs: list[" + std::to_string(i) + "] is not a Uint8Array");
    Napi::Uint8Array b = v.As<Napi::Uint8Array>();
    flags[i] = decodeOne(b.Data(), b.ByteLength(), static_cast<JDIMENSION>(w), static_cast<JDIMENSION>(h),
                         out.Data() + per * i)
                   ? 1
                   : 0;
  }
  return flags;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeJpegs", Napi::Function::New(env, decodeJpegs, "decodeJpegs"));
  exports.Set("libjpegVersion", Napi::Number::New(env, JPEG_LIB_VERSION));
  return exports;
}

}  // namespace

NODE_API_MODULE(resnet_jpeg, init)
