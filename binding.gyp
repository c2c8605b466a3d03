# binding.gyp: builds build/Release/resnet_native.node, the oneDNN addon behind src/backend/native.
# Needs Debian's libdnnl-dev (oneDNN 2.6 headers and libdnnl.so), g++, make, python3 (for node-gyp), and
# Node's headers (installed with Node; npm's `nodedir` or scripts/build-native.js points node-gyp at them).
# Portable: nothing is compiled for the build machine's CPU (no -march=native), so the same .node runs on any
# x86-64. Our own hot loops (winograd.cc, small_conv.cc) are compiled three times, for baseline x86-64, AVX2+FMA and AVX-512,
# into namespaces isa_base / isa_avx2 / isa_avx512; native/dispatch.cc picks one at run time. oneDNN
# dispatches its own kernels at run time.
{
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags!": ["-fno-exceptions", "-O2"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fopenmp", "-fexceptions", "-Wall", "-Wno-unused-parameter"]
  },
  "targets": [
    {
      "target_name": "winograd_base",
      "type": "static_library",
      "sources": ["native/winograd.cc", "native/small_conv.cc", "native/gemm_conv.cc"],
      "defines": ["RN_ISA_NS=isa_base"]
    },
    {
      "target_name": "winograd_avx2",
      "type": "static_library",
      "sources": ["native/winograd.cc", "native/small_conv.cc", "native/gemm_conv.cc"],
      "defines": ["RN_ISA_NS=isa_avx2"],
      "cflags_cc": ["-mavx2", "-mfma"]
    },
    {
      "target_name": "winograd_avx512",
      "type": "static_library",
      "sources": ["native/winograd.cc", "native/small_conv.cc", "native/gemm_conv.cc"],
      "defines": ["RN_ISA_NS=isa_avx512"],
      "cflags_cc": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq"]
    },
    {
      "target_name": "resnet_native",
      "dependencies": ["winograd_base", "winograd_avx2", "winograd_avx512"],
      "sources": [
        "native/addon.cc",
        "native/napi_args.cc",
        "native/napi_export.cc",
        "native/napi_tensor.cc",
        "native/profile.cc",
        "native/context.cc",
        "native/buffers.cc",
        "native/memory.cc",
        "native/eltwise.cc",
        "native/conv.cc",
        "native/conv_select.cc",
        "native/conv_infer.cc",
        "native/precision.cc",
        "native/dispatch.cc",
        "native/batchnorm.cc",
        "native/pool.cc",
        "native/linear.cc",
        "native/softmax.cc"
      ],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ],
  "conditions": [
    # the JPEG addon (native/jpeg.cc) only where libjpeg's headers are installed (libjpeg-dev); without it
    # src/data decodes every JPEG with sharp, the same pixels at more cost per image
    ["<!(test -f /usr/include/jpeglib.h && echo 1 || echo 0)==1", {
      "targets": [
        {
          "target_name": "resnet_jpeg",
          "sources": ["native/jpeg.cc"],
          "libraries": ["-ljpeg"]
        }
      ]
    }]
  ]
}
