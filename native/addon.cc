// N-API binding of native/gemm.cc (see native/README.md). Context-aware: loads in worker threads.
//
//   gemm(a, aOff, b, bOff, c, cOff, batch, M, N, K, strideA, strideB, flags, bias, biasOff, biasSize)
//     a, b, c: Float32Array (any buffer, the wasm heap included); offsets in elements;
//     flags: 1 transA, 2 transB, 4 accumulate into C, 8 ReLU, 16 portable kernel; bias: Float32Array or null.
//   info() → { avx2: boolean }
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "gemm.h"

namespace {

bool check(napi_env env, napi_status s) {
  if (s == napi_ok) return true;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "ERR_NATIVE", "colloquy native: N-API call failed");
  return false;
}

bool f32(napi_env env, napi_value v, const char* name, float** data, int64_t* len) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* ptr = nullptr;
  napi_value ab;
  if (is && napi_get_typedarray_info(env, v, &type, &length, &ptr, &ab, &offset) == napi_ok && type == napi_float32_array) {
    *data = static_cast<float*>(ptr);
    *len = int64_t(length);
    return true;
  }
  napi_throw_type_error(env, "ERR_NATIVE_ARG", (std::string("gemm: ") + name + " must be a Float32Array").c_str());
  return false;
}

bool num(napi_env env, napi_value v, const char* name, int64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) == napi_ok && std::isfinite(d) && d >= 0 && d == std::floor(d) && d < 9.0e15) {
    *out = int64_t(d);
    return true;
  }
  napi_throw_type_error(env, "ERR_NATIVE_ARG", (std::string("gemm: ") + name + " must be a non-negative integer").c_str());
  return false;
}

bool fits(napi_env env, const char* name, int64_t off, int64_t need, int64_t len) {
  if (need == 0 || off + need <= len) return true;
  napi_throw_range_error(env, "ERR_NATIVE_ARG", (std::string("gemm: ") + name + " is too short for the shapes given").c_str());
  return false;
}

napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 16;
  napi_value argv[16];
  if (!check(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr))) return nullptr;
  if (argc < 13) {
    napi_throw_type_error(env, "ERR_NATIVE_ARG", "gemm: expected at least 13 arguments");
    return nullptr;
  }
  float *a, *b, *c, *bias = nullptr;
  int64_t aLen, bLen, cLen, biasLen = 0;
  int64_t aOff, bOff, cOff, batch, M, N, K, sA, sB, flags, biasOff = 0, biasSize = 0;
  if (!f32(env, argv[0], "a", &a, &aLen) || !num(env, argv[1], "aOff", &aOff) ||
      !f32(env, argv[2], "b", &b, &bLen) || !num(env, argv[3], "bOff", &bOff) ||
      !f32(env, argv[4], "c", &c, &cLen) || !num(env, argv[5], "cOff", &cOff) ||
      !num(env, argv[6], "batch", &batch) || !num(env, argv[7], "M", &M) || !num(env, argv[8], "N", &N) ||
      !num(env, argv[9], "K", &K) || !num(env, argv[10], "strideA", &sA) || !num(env, argv[11], "strideB", &sB) ||
      !num(env, argv[12], "flags", &flags))
    return nullptr;
  if (argc >= 16) {
    napi_valuetype t;
    napi_typeof(env, argv[13], &t);
    if (t != napi_null && t != napi_undefined) {
      if (!f32(env, argv[13], "bias", &bias, &biasLen) || !num(env, argv[14], "biasOff", &biasOff) ||
          !num(env, argv[15], "biasSize", &biasSize))
        return nullptr;
      if (biasSize != 1 && biasSize != N) {
        napi_throw_range_error(env, "ERR_NATIVE_ARG", "gemm: biasSize must be 1 or N");
        return nullptr;
      }
      if (!fits(env, "bias", biasOff, biasSize, biasLen)) return nullptr;
    }
  }
  if (batch > 0) {
    if (!fits(env, "a", aOff, (batch - 1) * sA + M * K, aLen) || !fits(env, "b", bOff, (batch - 1) * sB + K * N, bLen) ||
        !fits(env, "c", cOff, batch * M * N, cLen))
      return nullptr;
  }
  colloquy::GemmArgs g{a + aOff, b + bOff, c + cOff, batch, M, N, K, sA, sB,
                       (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0,
                       bias ? bias + biasOff : nullptr, biasSize, (flags & 8) != 0, (flags & 16) != 0};
  colloquy::gemm(g);
  return nullptr;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, avx2;
  napi_create_object(env, &obj);
  napi_get_boolean(env, colloquy::gemmUsesAvx2(), &avx2);
  napi_set_named_property(env, obj, "avx2", avx2);
  return obj;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "gemm", NAPI_AUTO_LENGTH, Gemm, nullptr, &fn);
  napi_set_named_property(env, exports, "gemm", fn);
  napi_create_function(env, "info", NAPI_AUTO_LENGTH, Info, nullptr, &fn);
  napi_set_named_property(env, exports, "info", fn);
  return exports;
}
