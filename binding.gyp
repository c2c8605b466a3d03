# binding.gyp: builds build/Release/resnet_native.node, the oneDNN addon behind src/backend/native.
# Needs Debian's libdnnl-dev (oneDNN 2.6 headers and libdnnl.so), g++, make, python3 (for node-gyp), and
# Node's headers (installed with Node; npm's `nodedir` or scripts/build-native.js points node-gyp at them).
# Built on the machine that runs it, so -march=native is safe and lets our own loops use AVX-512.
{
  "targets": [
    {
      "target_name": "resnet_native",
      "sources": [
        "native/addon.cc",
        "native/context.cc",
        "native/buffers.cc",
        "native/memory.cc",
        "native/eltwise.cc",
        "native/conv.cc",
        "native/winograd.cc",
        "native/batchnorm.cc",
        "native/pool.cc",
        "native/linear.cc",
        "native/softmax.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fopenmp", "-fexceptions", "-Wall", "-Wno-unused-parameter"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
