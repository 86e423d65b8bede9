{
  "targets": [
    {
      "target_name": "colloquy_native",
      "sources": ["addon.cc", "gemm.cc", "nn.cc", "decode.cc", "parallel.cc", "block.cc", "mixture.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions", "-pthread"],
      "ldflags": ["-pthread"],
      "cflags_cc!": ["-fno-rtti"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
