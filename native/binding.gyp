{
  "targets": [
    {
      "target_name": "colloquy_native",
      "sources": ["addon.cc", "gemm.cc", "nn.cc", "decode.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
